"""The course's networks, built exactly as in the text, plus summaries learners can read.

Keras is imported inside each builder (the playground and home page never load it).
Builders return compiled models so a page, a test and a benchmark all train the same thing.
Page-specific networks live in their own modules and are re-exported at the bottom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import keras

Api = Literal["sequential", "functional"]
OPTIMIZERS = ("rmsprop", "adam", "sgd")


def make_optimizer(name: str = "rmsprop", learning_rate: float | None = None):
    """A Keras optimizer by name; None keeps Keras' default learning rate (rmsprop: 1e-3)."""
    import keras

    classes = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    if name not in classes:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {OPTIMIZERS}.")
    return classes[name]() if learning_rate is None else classes[name](learning_rate=learning_rate)


def build_mnist_dense(api: Api = "sequential", optimizer: str = "rmsprop", learning_rate: float | None = None) -> "keras.Model":
    """784 -> Dense(64, relu) -> Dense(10, softmax): 50,890 parameters (the course's dense net).

    Takes flattened 784-pixel inputs scaled to [0, 1]."""
    import keras
    from keras import layers

    if api == "sequential":
        model = keras.Sequential([
            keras.Input(shape=(784,)),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ], name="dense")
    elif api == "functional":
        inputs = keras.Input(shape=(784,))
        features = layers.Dense(64, activation="relu")(inputs)
        outputs = layers.Dense(10, activation="softmax")(features)
        model = keras.Model(inputs=inputs, outputs=outputs, name="dense")
    else:
        raise ValueError("api must be 'sequential' or 'functional'")
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def build_mnist_cnn(api: Api = "sequential", optimizer: str = "rmsprop", learning_rate: float | None = None) -> "keras.Model":
    """Conv2D(32,3) -> MaxPool -> Conv2D(64,3) -> MaxPool -> Conv2D(128,3) -> Flatten -> Dense(10):
    104,202 parameters (the course's CNN, after Chollet). Takes 28x28x1 inputs in [0, 1]."""
    import keras
    from keras import layers

    if api == "sequential":
        model = keras.Sequential([
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(filters=32, kernel_size=3, activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Conv2D(filters=64, kernel_size=3, activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Conv2D(filters=128, kernel_size=3, activation="relu"),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ], name="cnn")
    elif api == "functional":
        inputs = keras.Input(shape=(28, 28, 1))
        x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inputs)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
        x = layers.Flatten()(x)
        outputs = layers.Dense(10, activation="softmax")(x)
        model = keras.Model(inputs=inputs, outputs=outputs, name="cnn")
    else:
        raise ValueError("api must be 'sequential' or 'functional'")
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def summary_frame(model: "keras.Model", expand_nested: bool = False) -> pd.DataFrame:
    """The model summary as a table (Keras 3's ``summary()`` is terminal art).

    Columns: layer, type, output shape, params, trainable. Totals are in ``param_totals``."""
    rows = []

    def add(layer, prefix=""):
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            shape = None
        rows.append({
            "layer": prefix + layer.name,
            "type": type(layer).__name__,
            "output shape": str(shape).replace("None", "None") if shape is not None else "?",
            "params": int(layer.count_params()) if layer.built else 0,
            "trainable": bool(layer.trainable),
        })
        if expand_nested and hasattr(layer, "layers") and layer is not model:
            for sub in layer.layers:
                add(sub, prefix + "  ")

    for layer in model.layers:
        add(layer)
    return pd.DataFrame(rows)


def param_totals(model: "keras.Model") -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts, as the course's summaries show."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    non_trainable = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


def first_conv_arithmetic(model: "keras.Model") -> dict[str, int] | None:
    """Read the first Conv2D's kernel from the actual model: (k*k*C + 1) * K parameters."""
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            kh, kw, c, k = (int(d) for d in layer.kernel.shape)
            return {"kh": kh, "kw": kw, "channels": c, "filters": k, "params": int(layer.count_params()),
                    "formula": (kh * kw * c + 1) * k}
    return None


# --- figures

def network_figure(summary: pd.DataFrame, title: str = "", height: int | None = None, per_row: int = 4):
    """A drawing of the layers, in reading order: one box per layer with its type, output shape and
    parameters, at most ``per_row`` boxes to a row so the text stays readable in a half-width column
    and on a projector (one long row of eight boxes shrank it to 10 px)."""
    import plotly.graph_objects as go

    colors = {"Conv2D": "#1f77b4", "MaxPooling2D": "#ff7f0e", "Dense": "#2ca02c", "Flatten": "#7f7f7f",
              "InputLayer": "#bcbd22", "Rescaling": "#17becf", "Dropout": "#8c564b", "LSTM": "#9467bd",
              "SimpleRNN": "#e377c2", "Functional": "#d62728"}
    n = len(summary)
    cols = max(1, min(n, per_row))
    rows = -(-n // cols)
    gap = 0.45  # between rows, for the arrow that carries on to the next row

    def corner(i: int) -> tuple[float, float]:  # (left, bottom) of box i; row 0 at the top
        return float(i % cols), float((rows - 1 - i // cols) * (1 + gap))

    # Shapes and annotations are collected and set once: Plotly's add_annotation re-validates every
    # earlier one (quadratic), which made this drawing 56% of an MNIST page rerun (py-spy).
    shapes: list[dict] = []
    notes: list[dict] = []
    arrow = dict(xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=2, text="")
    for i, row in enumerate(summary.itertuples(index=False)):
        typ, shape, params = row[1], row[2], row[3]
        x0, y0 = corner(i)
        shapes.append(dict(type="rect", x0=x0, x1=x0 + 0.85, y0=y0, y1=y0 + 1, fillcolor=colors.get(typ, "#999999"),
                           opacity=0.85, line=dict(width=0)))
        for dy, text, size in ((0.72, f"<b>{typ}</b>", 15), (0.45, shape.replace("None, ", ""), 13),
                               (0.2, f"{params:,} params", 13)):
            notes.append(dict(x=x0 + 0.425, y=y0 + dy, text=text, showarrow=False, font=dict(color="white", size=size)))
        if i == n - 1:
            continue
        nx, ny = corner(i + 1)
        if ny == y0:  # same row: an arrow to the right
            notes.append(dict(arrow, x=nx, y=y0 + 0.5, ax=x0 + 0.85, ay=y0 + 0.5))
        else:  # next row: down from this box, back to the left, down into the next box
            mid = y0 - gap / 2
            shapes.append(dict(type="path", path=f"M {x0 + 0.425},{y0} L {x0 + 0.425},{mid} L {nx + 0.425},{mid}",
                               line=dict(color="#444", width=1.5)))
            notes.append(dict(arrow, x=nx + 0.425, y=ny + 1, ax=nx + 0.425, ay=mid))
    return go.Figure(layout=dict(
        shapes=shapes, annotations=notes, title=title, height=height or 20 + 120 * rows + (40 if title else 0),
        margin=dict(l=5, r=5, t=40 if title else 5, b=5), plot_bgcolor="rgba(0,0,0,0)",
        xaxis=dict(visible=False, range=[-0.1, cols]),
        yaxis=dict(visible=False, range=[-0.05, rows * (1 + gap) - gap + 0.05])))


# The cats-vs-dogs networks live in dnn2core.catsdogs (with their data pipeline); they are
# re-exported here lazily so ``dnn2core.models`` builds every network of the course.
_REEXPORTS = {"build_catsdogs_scratch": "dnn2core.catsdogs", "build_vgg16_transfer": "dnn2core.catsdogs",
              "unfreeze_top": "dnn2core.catsdogs"}


def __getattr__(name: str):
    if name in _REEXPORTS:
        import importlib
        return getattr(importlib.import_module(_REEXPORTS[name]), name)
    raise AttributeError(f"module 'dnn2core.models' has no attribute {name!r}")
