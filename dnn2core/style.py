"""The app's one visual style: a fixed colour per model (the same in every chart of every page),
per data split, and the axis settings every chart shares (integer epochs, every digit labelled).

Plain data and small helpers on Plotly figures; no Streamlit, no TensorFlow."""

from __future__ import annotations

import zlib
from typing import Sequence

# Tableau 10, the palette Plotly's own charts start from: names without a fixed colour take one of
# these by a hash of their name, so they too keep their colour across figures and reruns.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f")

MODEL_COLORS = {
    # Video 2: MNIST (and Inside the network's CNN)
    "Dense": "#1f77b4",
    "CNN": "#d62728",
    # Video 6: forecasting (the networks, then the classical methods)
    "SimpleRNN": "#9467bd",
    "LSTM": "#2ca02c",
    "Truth": "#000000",
    "Persistence": "#7f7f7f",
    "Seasonal naive": "#ff7f0e",
    "SARIMA": "#8c564b",
    "ARIMA": "#8c564b",
    # Video 7: house prices (the network, then scikit-learn on the same split)
    "Network": "#17becf",
    "Linear regression": "#7f7f7f",
    "Ridge": "#bcbd22",
    "k-nearest neighbours": "#e377c2",
    "Random forest": "#2ca02c",
    "Gradient boosting": "#ff7f0e",
    # Videos 3-4: cats vs dogs, the approaches
    "From scratch": "#8c564b",
    "VGG16 frozen": "#1f77b4",
    "VGG16 fine-tuned": "#d62728",
    "MobileNetV2 frozen": "#2ca02c",
    "MobileNetV2 fine-tuned": "#9467bd",
    # Tricks of the trade
    "Ordered by class": "#d62728",
    "Shuffled": "#1f77b4",
    "Ordered, fit(shuffle=True)": "#ff7f0e",
    "Early stopping": "#2ca02c",
    "All epochs": "#7f7f7f",
    "No correction": "#7f7f7f",
    "Subsampling": "#1f77b4",
    "Duplication": "#ff7f0e",
    "Class weights": "#2ca02c",
    "Moved threshold": "#d62728",
    "Flat": "#1f77b4",  # divide and conquer: the flat net; "Coarse (k groups)" by prefix
    "Coarse": "#ff7f0e",
}

# The data splits, when one model's curves are told apart by colour (e.g. house prices' train and dev).
SPLIT_COLORS = {"train": "#ff7f0e", "training": "#ff7f0e", "dev": "#1f77b4", "validation": "#1f77b4",
                "test": "#2ca02c"}
SPLIT_DASH = {"train": "dash", "validation": "solid"}  # train dashed, validation solid, as in the course's figures
REFERENCE_OPACITY = 0.45  # the course's full-length run drawn beside a live one: same colour, fainter


def model_color(name: str) -> str:
    """The colour of a model (or method, or approach) in every chart of the app.

    Decorated names keep their model's colour: "Course full run · CNN", "run 1a2b ★ · Dense",
    "VGG16 frozen (224 px)", "LSTM (6, 1)" all resolve to the model they name."""
    name = str(name).strip()
    if name in MODEL_COLORS:
        return MODEL_COLORS[name]
    last = name.rsplit(" · ", 1)[-1].strip()
    if last in MODEL_COLORS:
        return MODEL_COLORS[last]
    for key in sorted(MODEL_COLORS, key=len, reverse=True):  # "VGG16 fine-tuned (96 px)" before "VGG16"
        if last.startswith(key):
            return MODEL_COLORS[key]
    if "ARIMA" in last:
        return MODEL_COLORS["ARIMA"]
    return PALETTE[zlib.crc32(last.encode("utf-8")) % len(PALETTE)]


ABOVE_CUT = "#9e9e9e"  # a dendrogram's links above the cut (no group owns them)


def group_color(index: int) -> str:
    """The colour of the index-th group of classes (0-based) in the divide-and-conquer dendrogram
    and its table; a negative index is a link above the cut, grey."""
    return ABOVE_CUT if int(index) < 0 else PALETTE[int(index) % len(PALETTE)]


def split_color(split: str) -> str:
    return SPLIT_COLORS.get(str(split).lower(), PALETTE[zlib.crc32(str(split).encode("utf-8")) % len(PALETTE)])


def is_reference(name: str) -> bool:
    """A curve of the course's shipped full-length run (live.py names them "Course full run · …")."""
    return str(name).startswith("Course full run")


# ----------------------------------------------------------------------------- axes


SHORT_RUN = 12  # epochs up to which every epoch gets its tick


def integer_axis(fig, axis: str = "x", **kw) -> None:
    """Whole numbers only on an epoch (or count) axis: no 1.2, 1.4, … ticks; Plotly still thins them
    on long runs (tick0 1 so a 5-epoch run reads 1 2 3 4 5)."""
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    update(tickformat="d", tick0=1, rangemode="normal", **kw)
    # one tick an epoch on short runs (Plotly would put ticks at halves there); on longer ones Plotly's
    # own steps (2, 5, 10, …) are whole numbers already and every epoch would crowd the axis
    lengths = [len(getattr(t, axis)) for t in fig.data if getattr(t, axis, None) is not None]
    if not lengths or max(lengths) <= SHORT_RUN:
        update(dtick=1, **kw)


def digit_axis(fig, axis: str = "x", n: int = 10, numeric: bool = True, **kw) -> None:
    """Every class 0..n-1 labelled (Plotly otherwise skips every other one on a narrow chart)."""
    vals: Sequence = list(range(n)) if numeric else [str(d) for d in range(n)]
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    update(tickmode="array", tickvals=list(vals), ticktext=[str(d) for d in range(n)], **kw)
