"""Plot builders: plain arrays in, Plotly figures out (no Streamlit, no TensorFlow)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dnn2core.style import PALETTE, REFERENCE_OPACITY, integer_axis, is_reference, model_color  # noqa: F401 (PALETTE: re-exported)

DIVERGING = "RdBu_r"  # negative blue, zero white, positive red


def _image_axes(fig: go.Figure, row=None, col=None) -> None:
    kw = {} if row is None else {"row": row, "col": col}
    fig.update_yaxes(autorange="reversed", scaleanchor="x" if row is None else None, constrain="domain",
                     showgrid=False, zeroline=False, **kw)
    fig.update_xaxes(constrain="domain", showgrid=False, zeroline=False, **kw)


def _rect(fig: go.Figure, top: float, left: float, height: float, width: float, color: str, row=None, col=None) -> None:
    kw = {} if row is None else {"row": row, "col": col}
    fig.add_shape(type="rect", x0=left - 0.5, x1=left + width - 0.5, y0=top - 0.5, y1=top + height - 0.5,
                  line=dict(color=color, width=2), **kw)


def image_figure(image: np.ndarray, title: str = "", highlight: tuple[int, int, int, int] | None = None,
                 height: int = 360) -> go.Figure:
    """An input image (HxW gray or HxWx3 RGB, uint8 or float) with an optional highlighted box
    (top, left, height, width) — used to show the patch behind one output value."""
    img = np.asarray(image)
    if img.ndim == 3:
        rgb = img if img.dtype == np.uint8 else np.clip(img * (255 if img.max() <= 1 else 1), 0, 255).astype(np.uint8)
        fig = go.Figure(go.Image(z=rgb))
    else:
        fig = go.Figure(go.Heatmap(z=img, colorscale="gray", showscale=False,
                                   hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>"))
        _image_axes(fig)
    if highlight is not None:
        _rect(fig, *highlight, color="#ffb000")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig


def feature_map_figure(fmap: np.ndarray, title: str = "", cell: tuple[int, int] | None = None,
                       height: int = 360, signed: bool | None = None,
                       limits: tuple[float, float] | None = None, pick_step: int | None = None) -> go.Figure:
    """A feature map; signed values get a diverging scale centred on zero.

    ``limits`` (zmin, zmax) fix the colour range, e.g. robust percentiles so a few extreme cells do not
    wash out the rest. ``pick_step`` adds an invisible click target at the centre of every
    ``pick_step``-th cell: Plotly selects scatter points on a click but not heatmap cells, so these
    targets are what makes a click on the map select a cell (``st.plotly_chart(..., on_select=...)``)."""
    z = np.asarray(fmap, dtype=np.float64)
    signed = bool(np.nanmin(z) < 0) if signed is None else signed
    kw = dict(colorscale=DIVERGING, zmid=0.0) if signed else dict(colorscale="Viridis")
    if limits is not None:
        kw.update(zmin=float(limits[0]), zmax=float(limits[1]))
        kw.pop("zmid", None)
    if pick_step:  # the click targets' hover (the cell a click picks) replaces the heatmap's
        kw["hoverinfo"] = "skip"
    else:
        kw["hovertemplate"] = "row %{y}, col %{x}: %{z:.3f}<extra></extra>"
    fig = go.Figure(go.Heatmap(z=z, **kw))
    if pick_step:
        rows, cols = np.meshgrid(np.arange(0, z.shape[0], pick_step), np.arange(0, z.shape[1], pick_step),
                                 indexing="ij")
        rows, cols = rows.ravel(), cols.ravel()
        # mode "text" with no text draws nothing, is selectable, and (unlike markers, which tie every
        # point within 3 px) hovers and clicks the nearest centre even when cells are 2 px wide
        fig.add_trace(go.Scatter(
            x=cols, y=rows, mode="text", customdata=z[rows, cols], showlegend=False, name="cells",
            hovertemplate="row %{y}, col %{x}: %{customdata:.3f}<extra></extra>"))
    _image_axes(fig)
    if pick_step:
        fig.update_xaxes(range=[-0.5, z.shape[1] - 0.5])
        fig.update_yaxes(range=[z.shape[0] - 0.5, -0.5], autorange=False)
    if cell is not None:
        _rect(fig, cell[0], cell[1], 1, 1, color="#00c853")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig


def matrix_figure(matrix: np.ndarray, title: str = "", fmt: str = ".2f", height: int = 260) -> go.Figure:
    """A small matrix (kernel, patch, products) with its numbers written in the cells."""
    m = np.asarray(matrix, dtype=np.float64)
    lim = float(np.max(np.abs(m))) or 1.0
    fig = go.Figure(go.Heatmap(z=m, colorscale=DIVERGING, zmin=-lim, zmax=lim, showscale=False,
                               text=[[format(v, fmt) for v in row] for row in m], texttemplate="%{text}",
                               hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>"))
    _image_axes(fig)
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def maps_grid_figure(maps: np.ndarray, titles: Sequence[str], columns: int = 4, height_per_row: int = 220,
                     limits: Sequence[tuple[float, float]] | None = None) -> go.Figure:
    """K feature maps (HxWxK) side by side, each on its own diverging scale (from -max|z| to max|z|,
    or the map's own (zmin, zmax) in ``limits``, e.g. robust percentiles)."""
    maps = np.asarray(maps, dtype=np.float64)
    k = maps.shape[2]
    rows = math.ceil(k / columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles), horizontal_spacing=0.03,
                        vertical_spacing=0.08)
    for i in range(k):
        r, c = i // columns + 1, i % columns + 1
        z = maps[:, :, i]
        lim = float(np.max(np.abs(z))) or 1.0
        zmin, zmax = (-lim, lim) if limits is None else limits[i]
        fig.add_trace(go.Heatmap(z=z, colorscale=DIVERGING, zmin=zmin, zmax=zmax, showscale=False,
                                 hovertemplate="%{z:.3f}<extra></extra>"), row=r, col=c)
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=r, col=c)
        fig.update_xaxes(showticklabels=False, row=r, col=c)
    fig.update_layout(height=max(rows * height_per_row, 240), margin=dict(l=10, r=10, t=40, b=10))
    return fig


# ----------------------------------------------------------------------------- training curves

def training_curves_figure(history, metric: str, title: str | None = None, height: int = 320,
                           mark_best: bool = False, log_y: bool = False, color_by: str = "model",
                           y_title: str | None = None, first_epoch: int = 1) -> go.Figure:
    """Per-epoch curves of one metric for every model on shared axes: train dashed, validation solid
    (as in the course's figures). ``history`` is a tidy frame: model, epoch, metric, value.

    Each model keeps its colour of every other chart (``dnn2core.style``); the course's full run beside
    a live one is drawn in its model's colour, fainter. ``color_by="split"`` colours train and
    validation apart instead (one model's curves). Epochs before ``first_epoch`` are left out (an
    early spike that would flatten the rest)."""
    from dnn2core.style import SPLIT_DASH, split_color

    fig = go.Figure()
    models = list(dict.fromkeys(history["model"])) if len(history) else []
    for model in models:
        for split, prefix in (("train", ""), ("validation", "val_")):
            rows = history[(history["model"] == model) & (history["metric"] == prefix + metric)
                           & (history["epoch"] >= first_epoch)]
            if rows.empty:
                continue
            color = split_color(split) if color_by == "split" else model_color(model)
            faint = is_reference(model)
            fig.add_trace(go.Scatter(x=rows["epoch"], y=rows["value"], mode="lines+markers" if len(rows) <= 60
                                     else "lines", name=f"{model} · {split}", opacity=REFERENCE_OPACITY if faint else 1,
                                     line=dict(color=color, dash=SPLIT_DASH[split], width=1.5 if faint else 2),
                                     marker=dict(size=5)))
            if mark_best and prefix == "val_" and len(rows):
                best = rows.loc[rows["value"].idxmin() if "loss" in metric or "mae" in metric or "mse" in metric
                                else rows["value"].idxmax()]
                fig.add_trace(go.Scatter(x=[best["epoch"]], y=[best["value"]], mode="markers",
                                         marker=dict(symbol="star", size=14, color=color),
                                         name=f"{model} · best epoch {int(best['epoch'])}"))
    fig.update_layout(title=title or metric, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="epoch", yaxis_title=y_title or metric, legend=dict(orientation="h", y=-0.25))
    integer_axis(fig, "x")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def bars_figure(labels: Sequence[str], series: dict[str, Sequence[float]], title: str = "",
                height: int = 300, y_title: str = "") -> go.Figure:
    """Grouped bars: one group per label, one bar per series (e.g. class probabilities per model).
    Every label is written under its group (Plotly would skip some on a narrow chart), and each
    series has its model's colour."""
    fig = go.Figure()
    for name, values in series.items():
        fig.add_trace(go.Bar(x=list(labels), y=list(values), name=name, marker_color=model_color(name)))
    fig.update_layout(title=title, barmode="group", height=height, margin=dict(l=10, r=10, t=40, b=10),
                      yaxis_title=y_title)
    fig.update_xaxes(type="category", tickmode="array", tickvals=list(labels), ticktext=[str(v) for v in labels])
    return fig


def scatter_figure(x: Sequence, y: Sequence[float | None], labels: Sequence[str] = (), title: str = "",
                   x_title: str = "", y_title: str = "", height: int = 320) -> go.Figure:
    """One point per run: a setting (numbers or categories) against a result, labelled on hover."""
    fig = go.Figure(go.Scatter(x=list(x), y=list(y), mode="markers", text=list(labels) or None,
                               marker=dict(size=11, color=PALETTE[0], opacity=0.8),
                               hovertemplate="%{text}: %{y:.4g}<extra></extra>" if labels else None))
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), xaxis_title=x_title,
                      yaxis_title=y_title)
    return fig


# ----------------------------------------------------------------------------- presenter view

PRESENTER_SCALE = 1.5  # text on a projector at 1280x720: Plotly's 12 px becomes 18 px
PRESENTER_HEIGHT = 1.0  # the same height: the figure must stay above the fold at 1280x720


def presenter_figure(fig: go.Figure, scale: float = PRESENTER_SCALE, height: float = PRESENTER_HEIGHT) -> go.Figure:
    """A copy of ``fig`` for the presenter view: every text ``scale`` times larger (layout, titles,
    annotations, axes, legend, numbers written in cells), the top margin and height grown to fit.

    A copy, never the figure itself: pages may share a figure between sessions through a cache."""
    out = go.Figure(fig)
    layout = out.layout

    def bigger(size):
        return round(size * scale, 1) if size else None

    layout.font.size = bigger(layout.font.size or 12)
    if layout.title.font.size:
        layout.title.font.size = bigger(layout.title.font.size)
    if layout.legend.font.size:
        layout.legend.font.size = bigger(layout.legend.font.size)
    for ann in layout.annotations or ():
        if ann.font.size:
            ann.font.size = bigger(ann.font.size)

    def axis(ax) -> None:
        if ax.tickfont.size:
            ax.tickfont.size = bigger(ax.tickfont.size)
        if ax.title.font.size:
            ax.title.font.size = bigger(ax.title.font.size)
    out.for_each_xaxis(axis)
    out.for_each_yaxis(axis)
    for trace in out.data:
        textfont = getattr(trace, "textfont", None)
        if textfont is not None and (getattr(trace, "texttemplate", None) or getattr(trace, "text", None) is not None):
            textfont.size = bigger(textfont.size or 12)
    if layout.margin.t is not None:
        layout.margin.t = round(layout.margin.t * scale)
    if layout.height:
        layout.height = round(layout.height * height)
    return out
