"""Convolution playground (course Video 1, learning outcome 1). No TensorFlow on this page."""

import numpy as np
import pandas as pd
import streamlit as st

from dnn2core import convolution as conv
from dnn2core import data, keras_code, plots, uploads
from dnn2ui import exercises, present
from dnn2ui.sidebar import use_data
from dnn2ui.state import UrlState, as_code

url = UrlState("conv")
st.title("Convolution playground")
st.markdown("A **filter** is a kernel, a bias and an activation. Sweep it over an image and you get a "
            "**feature map**: $c = \\phi\\left(b + \\sum_i p_i f_i\\right)$ at every position.")
url.share_note()

tab_play, tab_example, tab_layer, tab_code = st.tabs(
    ["Playground", "The course's worked example", "A convolution layer (K filters)", "Keras code"])

# ----------------------------------------------------------------------------- input
with st.sidebar:
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
                note = (f"Uploaded {full.size[0]}x{full.size[1]}, downscaled to {shown.size[0]}x{shown.size[1]}"
                        if shown.size != full.size else f"Uploaded {full.size[0]}x{full.size[1]}")
            except uploads.UploadError as exc:
                st.error(f"{upload.name}: {exc} The sample image is used instead.")
    if image is None:
        name = url.selectbox("sample", "Sample image", data.sample_image_names(), data.sample_image_names()[0])
        loaded = data.load_sample_image(name)
        use_data(loaded.provenance)
        image, note = loaded.data, loaded.provenance.detail
    st.caption(note)
    rgb_mode = image.ndim == 3 and url.toggle("keep_rgb", "Keep colour (3-channel kernel)", True)
    if image.ndim == 3 and not rgb_mode:
        image = np.asarray(image.mean(axis=2), dtype=np.uint8)

channels = 1 if image.ndim == 2 else image.shape[2]

# ----------------------------------------------------------------------------- filter controls
with tab_play:
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

        st.markdown(f"**Kernel** ({size}x{size}; edit any cell — the preset is a starting point)")
        base_key = f"conv.base.{preset}.{size}"
        if base_key not in st.session_state:
            base = conv.preset_kernel(preset, size)
            raw = st.query_params.get("kernel")
            if raw:
                try:
                    values = conv.parse_kernel(np.array(raw.split(","), dtype=object).reshape(size, size))
                    base = values
                except ValueError as exc:
                    st.warning(f"The kernel in the link was ignored: {as_code(exc, 160)}")
            st.session_state[base_key] = base
        grid = st.data_editor(
            pd.DataFrame(st.session_state[base_key], columns=[str(j + 1) for j in range(size)]),
            key=f"conv.grid.{preset}.{size}", hide_index=True,
            column_config={str(j + 1): st.column_config.NumberColumn(format="%.3f", step=0.1) for j in range(size)})
        kernel, kernel_error = None, None
        try:
            kernel = conv.parse_kernel(grid.to_numpy(dtype=object))
        except ValueError as exc:
            kernel_error = str(exc)
            st.error(f"{exc} The feature map is not updated until the kernel is valid.")
        if kernel is not None:
            if np.allclose(kernel, conv.preset_kernel(preset, size)):
                st.query_params.pop("kernel", None)
            else:
                st.query_params["kernel"] = ",".join(f"{v:g}" for v in kernel.ravel())

    if kernel is not None:
        try:
            result = conv.run_playground(image, kernel, bias, stride, padding, activation,
                                         pool or None, pool_stride)
        except ValueError as exc:
            result = None
            st.error(str(exc))
    else:
        result = None

    if result is not None:
        oh, ow = result.out_shape
        h, w = result.in_shape
        with present.settings("Output size", folded_only_when_presenting=True):
            st.markdown("**Output size** (rows, then columns):")
            st.latex(r"H_{out} = " + conv.formula_text(h, size, stride, padding))
            st.latex(r"W_{out} = " + conv.formula_text(w, size, stride, padding))

        # Click on the feature map, or use the sliders, to choose an output position.
        for name, limit in (("row", oh - 1), ("col", ow - 1)):
            key = url.key(name)
            if key in st.session_state and st.session_state[key] > limit:
                st.session_state[key] = limit
        left, right = st.columns(2)
        fm_placeholder = right.empty()
        clicked = st.session_state.get("conv.fm_click")
        points = (clicked or {}).get("selection", {}).get("points", []) if isinstance(clicked, dict) else []
        if points:
            p = points[0]
            sig = (p.get("x"), p.get("y"))
            if sig != st.session_state.get("conv.last_click") and None not in sig:
                st.session_state["conv.last_click"] = sig
                st.session_state[url.key("row")] = int(min(max(p["y"], 0), oh - 1))
                st.session_state[url.key("col")] = int(min(max(p["x"], 0), ow - 1))
        s1, s2 = st.columns(2)
        row = url.slider("row", "Output row", 0, max(oh - 1, 0), oh // 2, where=s1) if oh > 1 else 0
        col = url.slider("col", "Output column", 0, max(ow - 1, 0), ow // 2, where=s2) if ow > 1 else 0
        explained = conv.explain_position(conv.to_unit_float(image), kernel, bias, stride, padding, activation, row, col)
        left.plotly_chart(plots.image_figure(image, f"Input {w}x{h}x{channels}",
                                             highlight=(explained.top, explained.left, size, size)),
                          key="conv.fig_input")
        with fm_placeholder:
            st.plotly_chart(plots.feature_map_figure(result.feature_map, f"Feature map {ow}x{oh} (click a cell)",
                                                     cell=(row, col)),
                            key="conv.fm_click", on_select="rerun", selection_mode="points")

        st.markdown(f"**Output at row {row}, column {col}** — input patch from row {explained.top}, "
                    f"column {explained.left}" + (" (zeros outside the image are padding)" if padding == "same" else ""))
        if channels == 1:
            m1, m2, m3 = st.columns(3)
            m1.plotly_chart(plots.matrix_figure(explained.patch, "Patch p"), key="conv.fig_patch")
            m2.plotly_chart(plots.matrix_figure(explained.kernel, "Kernel f"), key="conv.fig_kern")
            m3.plotly_chart(plots.matrix_figure(explained.products, "Products p·f"), key="conv.fig_prod")
        else:
            st.caption(f"On a {channels}-channel image the kernel is {size}x{size}x{channels}: "
                       f"{size * size * channels} weights, and the sum runs over all of them.")
        st.latex(rf"\sum_i p_i f_i = {explained.sum_of_products:.4f},\quad b + \sum_i p_i f_i = "
                 rf"{explained.bias:g} + {explained.sum_of_products:.4f} = {explained.pre_activation:.4f},\quad"
                 rf"\phi(\cdot) = \text{{{activation}}}({explained.pre_activation:.4f}) = {explained.output:.4f}")
        st.metric("Output value", f"{explained.output:.4f}")

        if result.pooled is not None:
            st.subheader("Max pooling")
            ph, pw = result.pooled_shape
            st.markdown(f"A {pool}x{pool} max pool with stride {pool_stride} keeps the largest value of each tile: "
                        f"**{oh}x{ow} → {ph}x{pw}** "
                        f"({oh * ow:,} → {ph * pw:,} values).")
            st.plotly_chart(plots.feature_map_figure(result.pooled, f"Pooled {pw}x{ph}", height=300), key="conv.fig_pooled")

# ----------------------------------------------------------------------------- worked example
with tab_example:
    st.markdown("The course convolves this 3x3 patch with the vertical-line kernel, bias 1 and ReLU. "
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
        terms = " + ".join(f"({pi:g})({fi:g})" for pi, fi in zip(p.ravel(), f.ravel()))
        st.markdown("Term by term:")
        st.latex(rf"\sum_i p_i f_i = {terms} = {ex.sum_of_products:.4g}")
        st.latex(rf"b + \sum_i p_i f_i = {ex_bias:g} + ({ex.sum_of_products:.4g}) = {ex.pre_activation:.4g}")
        st.latex(rf"c = \text{{{ex_act}}}({ex.pre_activation:.4g}) = {ex.output:.4g}")
        st.metric("Pre-activation", f"{ex.pre_activation:.4g}")
        if np.allclose(p, conv.COURSE_PATCH) and np.allclose(f, conv.COURSE_KERNEL) and ex_bias == conv.COURSE_BIAS:
            st.info(f"**Note on the course text:** it prints {conv.COURSE_PRINTED_PRE_ACTIVATION} as the "
                    f"pre-activation. Its own numbers give a sum of products of {ex.sum_of_products:.1f} and, with the "
                    f"bias, {ex.pre_activation:.1f}. ReLU turns either into 0, so the final answer, 0, is right.")
    except ValueError as exc:
        st.error(str(exc))

# ----------------------------------------------------------------------------- a layer
with tab_layer:
    st.markdown("A convolution layer applies **K filters** with the same size, stride, padding and activation, "
                "giving K feature maps. On a C-channel input each kernel is k x k x C.")
    names = url.multiselect("bank", "Filters in the layer", list(conv.PRESETS),
                            ["vertical line", "horizontal edges", "sobel x", "laplacian"])
    if names:
        bank = conv.filter_bank(names, size, channels)
        try:
            maps = conv.conv2d(conv.to_unit_float(image), bank.astype(np.float32), bias=bias, stride=stride,
                               padding=padding, activation=activation)
            st.plotly_chart(plots.maps_grid_figure(maps, names), key="conv.fig_bank")
        except ValueError as exc:
            st.error(str(exc))
        k_count = len(names)
        params = conv.conv_layer_params(size, channels, k_count)
        st.latex(rf"(k \cdot k \cdot C + 1) \cdot K = ({size} \cdot {size} \cdot {channels} + 1) \cdot {k_count} = {params:,}")
        st.caption("The +1 is each filter's bias. The course's 3x3x5 filter has 3·3·5 = 45 weights (46 with its bias).")
    else:
        st.warning("Choose at least one filter.")

# ----------------------------------------------------------------------------- code
with tab_code:
    st.markdown("The Keras layer equivalent to the playground's settings (one filter here; a real layer learns many):")
    st.code(keras_code.convolution_code(1, size, stride, padding, activation, (*image.shape[:2], channels)),
            language="python")
    st.markdown("And the layer tab's K filters, with pooling:")
    st.code(keras_code.convolution_code(max(len(names), 1), size, stride, padding, activation,
                                        (*image.shape[:2], channels), pool=pool, pool_stride=pool_stride),
            language="python")


exercises.try_this("convolution", url)
url.sync()
