"""Convolution playground (course Video 1, learning outcome 1). No TensorFlow on this page.

Sizes are written rows × columns (height × width), as NumPy and Keras shapes are."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

from dnn2core import convolution as conv
from dnn2core import data, keras_code, plots, uploads
from dnn2ui import exercises, present
from dnn2ui.sidebar import use_data
from dnn2ui.state import UrlState, as_code

MAP_KEY = "conv.fm_click"  # the feature map's selection state (a click on a cell)


class Filter(NamedTuple):
    size: int
    bias: float
    activation: str
    stride: int
    padding: str
    pool: int
    pool_stride: int


# ----------------------------------------------------------------------------- input image (sidebar)

def input_image(url: UrlState) -> np.ndarray:
    """The sidebar's image: a sample or an upload, gray or colour (uint8, HxW or HxWx3)."""
    st.markdown("**Input image**")
    source = url.radio("source", "Source", ["Sample", "Upload"], "Sample", horizontal=True)
    image, note = None, ""
    if source == "Upload":
        upload = st.file_uploader("Image file", type=list(uploads.IMAGE_EXTENSIONS), key="conv.upload")
        if upload is not None:
            try:
                full = uploads.open_image(upload.getvalue())
                shown = uploads.fit_within(full, 256)
                image = np.asarray(shown)
                note = conv.upload_note(full.size, shown.size)
            except uploads.UploadError as exc:
                st.error(f"{upload.name}: {exc} The sample image is used instead.")
    if image is None:
        name = url.selectbox("sample", "Sample image", data.sample_image_names(), data.sample_image_names()[0])
        loaded = data.load_sample_image(name)
        detail = conv.rows_first_detail(loaded.provenance.detail, loaded.data.shape)
        use_data(dataclasses.replace(loaded.provenance, detail=detail))
        image, note = loaded.data, detail
    st.caption(note)
    rgb_mode = image.ndim == 3 and url.toggle("keep_rgb", "Keep colour (3-channel kernel)", True)
    if image.ndim == 3 and not rgb_mode:
        image = np.asarray(image.mean(axis=2), dtype=np.uint8)
    return image


# ----------------------------------------------------------------------------- playground tab

def filter_controls(url: UrlState) -> tuple[Filter, np.ndarray | None]:
    """Kernel size, preset, bias, activation, stride, padding, pooling and the editable kernel."""
    with present.settings("Filter and kernel", folded_only_when_presenting=True):
        c1, c2, c3, c4 = st.columns(4)
        size = url.select_slider("k", "Kernel size", [3, 5, 7], 3, where=c1)
        preset = url.selectbox("preset", "Preset", list(conv.PRESETS), "vertical line", where=c1)
        bias = url.number("bias", "Bias b", 0.0, -10.0, 10.0, where=c2, step=0.1)
        activation = url.selectbox("act", "Activation φ", ["none", "relu", "sigmoid", "tanh"], "none", where=c2)
        stride = url.slider("stride", "Stride s", 1, 4, 1, where=c3)
        padding = url.radio("pad", "Padding", ["valid", "same"], "valid", where=c3, horizontal=True)
        pool = url.select_slider("pool", "Max-pool size", [0, 2, 3, 4], 2, where=c4, help="0 = no pooling")
        pool_stride = url.slider("pool_s", "Pool stride", 1, 4, 2, where=c4)
        kernel = kernel_editor(preset, size)
    return Filter(size, bias, activation, stride, padding, pool, pool_stride), kernel


def kernel_editor(preset: str, size: int) -> np.ndarray | None:
    """The kernel grid, seeded from the preset (or the link's kernel); None while a cell is invalid."""
    st.markdown(f"**Kernel** ({conv.size_text((size, size))}; edit any cell — the preset is a starting point)")
    base_key = f"conv.base.{preset}.{size}"
    if base_key not in st.session_state:
        base = conv.preset_kernel(preset, size)
        raw = st.query_params.get("kernel")
        if raw:
            try:
                base = conv.parse_kernel(np.array(raw.split(","), dtype=object).reshape(size, size))
            except ValueError as exc:
                st.warning(f"The kernel in the link was ignored: {as_code(exc, 160)}")
        st.session_state[base_key] = base
    grid = st.data_editor(
        pd.DataFrame(st.session_state[base_key], columns=[str(j + 1) for j in range(size)]),
        key=f"conv.grid.{preset}.{size}", hide_index=True,
        column_config={str(j + 1): st.column_config.NumberColumn(format="%.3f", step=0.1) for j in range(size)})
    try:
        kernel = conv.parse_kernel(grid.to_numpy(dtype=object))
    except ValueError as exc:
        st.error(f"{exc} The feature map is not updated until the kernel is valid.")
        return None
    if np.allclose(kernel, conv.preset_kernel(preset, size)):
        st.query_params.pop("kernel", None)
    else:
        st.query_params["kernel"] = ",".join(f"{v:g}" for v in kernel.ravel())
    return kernel


def inspected_cell(url: UrlState, shape: tuple[int, int]) -> tuple[int, int]:
    """The output cell to explain: from a click, the sliders or the link, kept inside the map.

    Written back before the sliders are drawn: their range changes with the map's size, and
    Streamlit would otherwise start the resized slider at 0."""
    row_key = url.init("row", shape[0] // 2, int, lambda v: v >= 0)
    col_key = url.init("col", shape[1] // 2, int, lambda v: v >= 0)
    row, col = conv.clamp_cell(st.session_state[row_key], st.session_state[col_key], shape)
    st.session_state[row_key], st.session_state[col_key] = row, col
    s1, s2 = st.columns(2)
    if shape[0] > 1:
        row = url.slider("row", "Output row", 0, shape[0] - 1, row, where=s1)
    if shape[1] > 1:
        col = url.slider("col", "Output column", 0, shape[1] - 1, col, where=s2)
    return row, col


def _cell_clicked(row_key: str, col_key: str) -> None:
    """on_select callback: a click on the feature map chooses that cell (kept inside the map later)."""
    cell = conv.cell_from_selection(st.session_state.get(MAP_KEY))
    if cell is not None:
        st.session_state[row_key], st.session_state[col_key] = cell


def playground_tab(url: UrlState, image: np.ndarray) -> Filter:
    """Sweep one filter over the image; click a feature-map cell to see its value computed."""
    settings, kernel = filter_controls(url)
    if kernel is None:
        return settings
    try:
        result = conv.run_playground(image, kernel, settings.bias, settings.stride, settings.padding,
                                     settings.activation, settings.pool or None, settings.pool_stride)
    except ValueError as exc:
        st.error(str(exc))
        return settings
    channels = 1 if image.ndim == 2 else image.shape[2]
    (h, w), (oh, ow) = result.in_shape, result.out_shape
    with present.settings("Output size", folded_only_when_presenting=True):
        st.markdown("**Output size** (rows, then columns):")
        st.latex(r"H_{out} = " + conv.formula_text(h, settings.size, settings.stride, settings.padding))
        st.latex(r"W_{out} = " + conv.formula_text(w, settings.size, settings.stride, settings.padding))

    left, right = st.columns(2)
    slider_area = st.container()
    with slider_area:
        row, col = inspected_cell(url, (oh, ow))
    explained = conv.explain_position(conv.to_unit_float(image), kernel, settings.bias, settings.stride,
                                      settings.padding, settings.activation, row, col)
    left.plotly_chart(plots.image_figure(image, f"Input {conv.size_text(image.shape)}",
                                         highlight=(explained.top, explained.left, settings.size, settings.size)),
                      key="conv.fig_input")
    limits = conv.robust_limits(result.feature_map)
    step = conv.pick_step((oh, ow))
    right.plotly_chart(
        plots.feature_map_figure(result.feature_map, f"Feature map {conv.size_text((oh, ow))} (click a cell)",
                                 cell=(row, col), limits=limits, pick_step=step),
        key=MAP_KEY, on_select=lambda: _cell_clicked(url.key("row"), url.key("col")), selection_mode="points")
    picks = ("" if step == 1 else f" On this {conv.size_text((oh, ow))} map the click targets are {step} cells "
             "apart; the sliders reach every cell.")
    slider_area.caption(
        f"Click a cell of the feature map, or use the sliders, to see how its value is computed.{picks} "
        f"Colours span the map's 1st to 99th percentile ({limits[0]:.3g} to {limits[1]:.3g}), so a few extreme "
        "cells do not wash out the rest; cells beyond take the end colours. Hover a cell for its exact value.")

    cell_breakdown(url, explained, settings, channels)
    if result.pooled is not None:
        pooling_section(result.pooled, settings, (oh, ow))
    return settings


def cell_breakdown(url: UrlState, explained: conv.PositionExplanation, settings: Filter, channels: int) -> None:
    """Patch, kernel and products of the inspected cell (one channel at a time on a colour image)."""
    k = settings.size
    st.markdown(f"**Output at row {explained.row}, column {explained.col}** — input patch from row "
                f"{explained.top}, column {explained.left}"
                + (" (zeros outside the image are padding)" if settings.padding == "same" else ""))
    names = conv.channel_names(channels)
    sums = conv.channel_sums(explained.products)
    if channels == 1:
        patch, kernel, products, label = explained.patch, explained.kernel, explained.products, ""
    else:
        st.markdown(
            f"On a {channels}-channel image the {conv.size_text((k, k))} kernel becomes "
            f"{conv.size_text((k, k, channels))}: one {conv.size_text((k, k))} slice per channel (here the "
            f"kernel's numbers in every slice). Each slice multiplies its own channel's patch, the products of "
            f"all {channels} channels are summed, and the bias is added once.")
        shown = url.radio("ch", "Channel shown", names, names[0], horizontal=True)
        c = names.index(shown)
        patch, kernel, products = explained.patch[:, :, c], explained.kernel[:, :, c], explained.products[:, :, c]
        label = f" ({shown})"
    m1, m2, m3 = st.columns(3)
    m1.plotly_chart(plots.matrix_figure(patch, f"Patch p{label}"), key="conv.fig_patch")
    m2.plotly_chart(plots.matrix_figure(kernel, f"Kernel f{label}"), key="conv.fig_kern")
    m3.plotly_chart(plots.matrix_figure(products, f"Products p·f{label}"), key="conv.fig_prod")
    st.latex(conv.output_latex(explained.sum_of_products, explained.bias, explained.pre_activation,
                               settings.activation, explained.output,
                               channel_totals=sums if channels > 1 else None, channel_labels=names))
    st.metric("Output value", f"{explained.output:.4f}")


def pooling_section(pooled: np.ndarray, settings: Filter, map_shape: tuple[int, int]) -> None:
    st.subheader("Max pooling")
    ph, pw = pooled.shape[:2]
    p = settings.pool
    st.markdown(f"A {conv.size_text((p, p))} max pool with stride {settings.pool_stride} keeps the largest value "
                f"of each tile: **{conv.size_text(map_shape)} → {conv.size_text((ph, pw))}** "
                f"({map_shape[0] * map_shape[1]:,} → {ph * pw:,} values).")
    st.plotly_chart(plots.feature_map_figure(pooled, f"Pooled {conv.size_text((ph, pw))}", height=300,
                                             limits=conv.robust_limits(pooled)), key="conv.fig_pooled")


# ----------------------------------------------------------------------------- worked example tab

def example_tab() -> None:
    """The course's 3 × 3 example, editable, with the sum written out term by term."""
    st.markdown("The course convolves this 3 × 3 patch with the vertical-line kernel, bias 1 and ReLU. "
                "Edit any number to check your own arithmetic.")
    e1, e2, e3 = st.columns([3, 3, 2])
    with e1:
        st.markdown("Patch p")
        patch_df = st.data_editor(pd.DataFrame(conv.COURSE_PATCH, columns=["1", "2", "3"]), key="conv.ex_patch",
                                  hide_index=True)
    with e2:
        st.markdown("Kernel f")
        kern_df = st.data_editor(pd.DataFrame(conv.COURSE_KERNEL, columns=["1", "2", "3"]), key="conv.ex_kernel",
                                 hide_index=True)
    with e3:
        ex_bias = st.number_input("Bias b", value=conv.COURSE_BIAS, step=0.1, key="conv.ex_bias")
        ex_act = st.selectbox("Activation", ["relu", "none", "sigmoid", "tanh"], key="conv.ex_act")
    try:
        p = conv.parse_kernel(patch_df.to_numpy(dtype=object))
        f = conv.parse_kernel(kern_df.to_numpy(dtype=object))
        if p.shape != f.shape:
            raise ValueError("The patch and the kernel must have the same size.")
        ex = conv.explain_position(p, f, ex_bias, activation=ex_act)
        st.markdown("Term by term, one kernel row a line:")
        st.latex(conv.sum_of_products_latex(p, f))
        st.latex(rf"b + \sum_i p_i f_i = {ex_bias:g} + ({ex.sum_of_products:.4g}) = {ex.pre_activation:.4g}")
        st.latex(rf"c = \text{{{ex_act}}}({ex.pre_activation:.4g}) = {ex.output:.4g}")
        st.metric("Pre-activation", f"{ex.pre_activation:.4g}")
        if np.allclose(p, conv.COURSE_PATCH) and np.allclose(f, conv.COURSE_KERNEL) and ex_bias == conv.COURSE_BIAS:
            st.info(f"**Note on the course text:** it prints {conv.COURSE_PRINTED_PRE_ACTIVATION} as the "
                    f"pre-activation. Its own numbers give a sum of products of {ex.sum_of_products:.1f} and, with the "
                    f"bias, {ex.pre_activation:.1f}. ReLU turns either into 0, so the final answer, 0, is right.")
    except ValueError as exc:
        st.error(str(exc))


# ----------------------------------------------------------------------------- layer tab

def layer_tab(url: UrlState, image: np.ndarray, settings: Filter) -> list[str]:
    """K preset filters with the playground's size, stride, padding and activation: K feature maps."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    st.markdown("A convolution layer applies **K filters** with the same size, stride, padding and activation, "
                "giving K feature maps. On a C-channel input each kernel is k × k × C.")
    names = url.multiselect("bank", "Filters in the layer", list(conv.PRESETS),
                            ["vertical line", "horizontal edges", "sobel x", "laplacian"])
    if not names:
        st.warning("Choose at least one filter.")
        return names
    bank = conv.filter_bank(names, settings.size, channels)
    try:
        maps = conv.conv2d(conv.to_unit_float(image), bank.astype(np.float32), bias=settings.bias,
                           stride=settings.stride, padding=settings.padding, activation=settings.activation)
        limits = [conv.robust_limits(maps[:, :, i], symmetric=True) for i in range(maps.shape[2])]
        st.plotly_chart(plots.maps_grid_figure(maps, names, limits=limits), key="conv.fig_bank")
        st.caption("Each map's colours span its 1st to 99th percentile, centred on zero, so a few extreme cells "
                   "do not wash it out.")
    except ValueError as exc:
        st.error(str(exc))
    size, k_count = settings.size, len(names)
    params = conv.conv_layer_params(size, channels, k_count)
    st.latex(rf"(k \cdot k \cdot C + 1) \cdot K = ({size} \cdot {size} \cdot {channels} + 1) \cdot {k_count} = {params:,}")
    st.caption("The +1 is each filter's bias. The course's 3 × 3 × 5 filter has 3·3·5 = 45 weights (46 with its bias).")
    return names


# ----------------------------------------------------------------------------- code tab

def code_tab(image_shape: tuple[int, ...], settings: Filter, names: list[str]) -> None:
    shape = (*image_shape[:2], 1 if len(image_shape) == 2 else image_shape[2])
    st.markdown("The Keras layer equivalent to the playground's settings (one filter here; a real layer learns many):")
    st.code(keras_code.convolution_code(1, settings.size, settings.stride, settings.padding, settings.activation,
                                        shape), language="python")
    st.markdown("And the layer tab's K filters, with pooling:")
    st.code(keras_code.convolution_code(max(len(names), 1), settings.size, settings.stride, settings.padding,
                                        settings.activation, shape, pool=settings.pool,
                                        pool_stride=settings.pool_stride), language="python")


# ----------------------------------------------------------------------------- page

url = UrlState("conv")
st.title("Convolution playground")
st.markdown("A **filter** is a kernel, a bias and an activation. Sweep it over an image and you get a "
            "**feature map**: $c = \\phi\\left(b + \\sum_i p_i f_i\\right)$ at every position.")
url.share_note()
tab_play, tab_example, tab_layer, tab_code = st.tabs(
    ["Playground", "The course's worked example", "A convolution layer (K filters)", "Keras code"])
with st.sidebar:
    picture = input_image(url)
with tab_play:
    chosen = playground_tab(url, picture)
with tab_example:
    example_tab()
with tab_layer:
    bank_names = layer_tab(url, picture, chosen)
with tab_code:
    code_tab(picture.shape, chosen, bank_names)
exercises.try_this("convolution", url)
url.sync()
