"""AppTest of the convolution playground: its controls, the numbers it shows, bad input."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import qp, open_page

from dnn2core import convolution as conv
from dnn2core import data


def page(**params) -> AppTest:
    return open_page("pages/convolution.py", timeout=60, **params)

def latex(at) -> str:
    return " ".join(x.value for x in at.latex)


def figure(at, key: str) -> dict:
    """The Plotly spec of the chart with this key, as the browser receives it."""
    [chart] = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key)]
    return json.loads(chart.proto.spec)


def values(v) -> np.ndarray:
    """A Plotly array from a spec: a plain list, or Plotly's typed array ({dtype, bdata, shape})."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v)


def cell(at) -> tuple[int, int]:
    return at.slider(key="conv.row").value, at.slider(key="conv.col").value


BARS = "Synthetic: bars, disc and diagonal (grayscale)"


def test_defaults_show_formula_and_output(no_local_data):
    at = page(sample="Synthetic: bars, disc and diagonal (grayscale)")
    # 96x96 input, 3x3 kernel, stride 1, valid: floor((96-3)/1)+1 = 94
    assert r"\left\lfloor \frac{96 - 3}{1} \right\rfloor + 1 = 94" in latex(at)
    assert qp(at, "preset") == "vertical line"
    assert "94 × 94 → 47 × 47" in " ".join(m.value for m in at.markdown)  # pooling sizes, rows × columns


def test_controls_change_the_numbers_and_the_url(no_local_data):
    at = page(sample="Synthetic: bars, disc and diagonal (grayscale)")
    at.selectbox(key="conv.preset").set_value("sobel x")
    at.slider(key="conv.stride").set_value(2)
    at.radio(key="conv.pad").set_value("same")
    at.number_input(key="conv.bias").set_value(0.5)
    at.selectbox(key="conv.act").set_value("relu")
    at.run()
    assert not at.exception
    assert r"\left\lceil \frac{96}{2} \right\rceil = 48" in latex(at)
    assert qp(at, "preset") == "sobel x" and qp(at, "stride") == "2"
    assert qp(at, "pad") == "same" and qp(at, "act") == "relu"
    # the explained output value is the feature-map value at the chosen position
    row, col = at.slider(key="conv.row").value, at.slider(key="conv.col").value
    img = data.load_sample_image("Synthetic: bars, disc and diagonal (grayscale)").data
    fmap = conv.conv2d(conv.to_unit_float(img), conv.preset_kernel("sobel x", 3).astype(np.float32), 0.5, 2, "same", "relu")
    shown = float(at.metric[0].value)
    assert shown == pytest.approx(float(fmap[row, col]), abs=1e-3)
    assert len(at.get("plotly_chart")) >= 4


def test_link_reopens_the_same_experiment(no_local_data):
    at = page(sample="Synthetic: bars, disc and diagonal (grayscale)", preset="laplacian", k="5", stride="3",
              pad="valid", act="tanh", bias="0.25", row="4", col="7")
    assert at.selectbox(key="conv.preset").value == "laplacian"
    assert at.select_slider(key="conv.k").value == 5
    assert at.slider(key="conv.stride").value == 3
    assert at.selectbox(key="conv.act").value == "tanh"
    assert (at.slider(key="conv.row").value, at.slider(key="conv.col").value) == (4, 7)
    assert r"\frac{96 - 5}{3}" in latex(at)


def test_bad_link_values_are_ignored_with_a_note(no_local_data):
    at = page(stride="99", preset="nonsense")
    assert at.slider(key="conv.stride").value == 1
    assert any("stride=99" in c.value for c in at.caption)


def test_bad_kernel_in_link_is_refused_with_message(no_local_data):
    at = page(sample="Synthetic: bars, disc and diagonal (grayscale)", kernel="1,nan,0,0,0,0,0,0,0")
    assert any("kernel in the link was ignored" in w.value for w in at.warning)
    assert not at.error


def test_custom_kernel_in_link_is_used(no_local_data):
    at = page(sample="Synthetic: bars, disc and diagonal (grayscale)", kernel="0,0,0,0,2,0,0,0,0", pool="0")
    img = data.load_sample_image("Synthetic: bars, disc and diagonal (grayscale)").data
    row, col = at.slider(key="conv.row").value, at.slider(key="conv.col").value
    assert float(at.metric[0].value) == pytest.approx(2 * img[row + 1, col + 1] / 255, abs=1e-3)


def test_worked_example_shows_correct_arithmetic_and_the_slip(no_local_data):
    at = page()
    text = latex(at)
    assert "= -1.4" in text and "= -0.4" in text and r"\text{relu}(-0.4) = 0" in text
    assert any("-2.2" in i.value for i in at.info)


def test_layer_tab_shows_parameter_count(no_local_data):
    at = page(sample="Photo: Grace Hopper (RGB)", keep_rgb="1")
    assert r"(3 \cdot 3 \cdot 3 + 1) \cdot 4 = 112" in latex(at)
    at.multiselect(key="conv.bank").set_value(["sobel x"]).run()
    assert r"(3 \cdot 3 \cdot 3 + 1) \cdot 1 = 28" in latex(at)


def test_keras_code_follows_the_controls(no_local_data):
    at = page(stride="2", pad="same", act="relu", k="5")
    code = " ".join(c.value for c in at.code)
    assert "kernel_size=5" in code and "strides=2" in code and "padding='same'" in code and "activation='relu'" in code


def _png(w, h):
    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("payload,message", [
    (_png(20000, 20000), "megapixels"),
    (b"not an image at all", "not an image"),
    (_png(64, 64)[:60], "damaged or incomplete"),
])
def test_bad_uploads_get_a_message_and_the_page_keeps_working(no_local_data, payload, message):
    at = page(source="Upload", stride="2")
    at.file_uploader(key="conv.upload").set_value(("bad.png", payload, "image/png")).run()
    assert not at.exception
    assert any(message in e.value for e in at.sidebar.error), [e.value for e in at.sidebar.error]
    assert at.slider(key="conv.stride").value == 2           # settings are kept
    assert at.metric  # and the page still computes, on the sample image


def test_good_upload_is_downscaled_and_used(no_local_data):
    at = page(source="Upload")
    rgb = Image.fromarray((np.random.default_rng(0).random((600, 800, 3)) * 255).astype(np.uint8))
    buf = io.BytesIO()
    rgb.save(buf, "PNG")
    at.file_uploader(key="conv.upload").set_value(("photo.png", buf.getvalue(), "image/png")).run()
    assert not at.exception and not at.sidebar.error
    assert any("Uploaded 600 × 800 px (rows × columns), downscaled to 192 × 256" in c.value for c in at.sidebar.caption)
    assert figure(at, "conv.fig_input")["layout"]["title"]["text"] == "Input 192 × 256 × 3"


def test_empty_kernel_cell_is_refused(no_local_data):
    at = page(sample="Synthetic: bars, disc and diagonal (grayscale)")
    editor = at.get("arrow_data_editor") if hasattr(at, "get") else []
    # simulate the learner clearing a cell: the page must say which cell and not crash
    with pytest.raises(ValueError, match="Row 2, column 2 .* empty"):
        conv.parse_kernel([[0, 1, 0], [1, None, 1], [0, 1, 0]])
    assert editor is not None


# ----------------------------------------------------------------------------- issue 14

def test_new_stride_or_image_keeps_the_inspected_cell_inside_the_map(no_local_data):
    at = page(sample=BARS)
    at.slider(key="conv.row").set_value(30)
    at.slider(key="conv.col").set_value(40)
    at.run()
    at.slider(key="conv.stride").set_value(2).run()               # 47 × 47: the cell still exists
    assert cell(at) == (30, 40) and at.slider(key="conv.row").max == 46
    assert "**Output at row 30, column 40**" in " ".join(m.value for m in at.markdown)
    at.slider(key="conv.stride").set_value(4).run()               # 24 × 24: moved to the last cell
    assert cell(at) == (23, 23) and qp(at, "row") == "23" and qp(at, "col") == "23"
    at.slider(key="conv.stride").set_value(1).run()               # and stays there when the map grows back
    assert cell(at) == (23, 23)
    at.selectbox(key="conv.sample").set_value("Handwritten 3 (MNIST, grayscale)").run()
    assert cell(at) == (23, 23)                                   # 26 × 26 map from the 28 × 28 digit
    at.slider(key="conv.row").set_value(25)
    at.select_slider(key="conv.k").set_value(7).run()              # 22 × 22
    assert cell(at) == (21, 21)
    assert not at.exception


def test_link_cell_outside_the_map_is_clamped(no_local_data):
    at = page(sample=BARS, row="500", col="3", stride="2")
    assert cell(at) == (46, 3) and qp(at, "row") == "46"


def test_sizes_read_rows_by_columns_everywhere(no_local_data):
    at = page(sample="Photo: Grace Hopper (RGB)", keep_rgb="1", pool="2", pool_s="2")
    h, w, _ = data.load_sample_image("Photo: Grace Hopper (RGB)").data.shape
    assert (h, w) == (256, 218)
    assert figure(at, "conv.fig_input")["layout"]["title"]["text"] == "Input 256 × 218 × 3"
    assert figure(at, "conv.fm_click")["layout"]["title"]["text"] == "Feature map 254 × 216 (click a cell)"
    assert figure(at, "conv.fig_pooled")["layout"]["title"]["text"] == "Pooled 127 × 108"
    assert r"\frac{256 - 3}{1} \right\rfloor + 1 = 254" in latex(at)  # H_out from the 256 rows
    assert any(c.value.startswith("256 × 218 px (rows × columns)") for c in at.sidebar.caption)
    text = " ".join(m.value for m in at.markdown)
    assert "x256" not in text and "218x" not in text


def test_colour_photo_shows_one_channel_of_the_grids_and_how_channels_add_up(no_local_data):
    at = page(sample="Photo: Grace Hopper (RGB)", keep_rgb="1", row="100", col="90")
    text = " ".join(m.value for m in at.markdown)
    assert "one 3 × 3 slice per channel" in text and "bias is added once" in text
    radio = at.radio(key="conv.ch")
    assert radio.options == ["red", "green", "blue"] and radio.value == "red"
    img = conv.to_unit_float(data.load_sample_image("Photo: Grace Hopper (RGB)").data).astype(np.float64)
    kernel = conv.preset_kernel("vertical line", 3)

    def shown(key):
        return values(figure(at, key)["data"][0]["z"])

    np.testing.assert_allclose(shown("conv.fig_patch"), img[100:103, 90:93, 0], atol=1e-6)
    np.testing.assert_allclose(shown("conv.fig_kern"), kernel)
    radio.set_value("green").run()
    assert qp(at, "ch") == "green"
    np.testing.assert_allclose(shown("conv.fig_patch"), img[100:103, 90:93, 1], atol=1e-6)
    np.testing.assert_allclose(shown("conv.fig_prod"), img[100:103, 90:93, 1] * kernel, atol=1e-6)
    assert figure(at, "conv.fig_patch")["layout"]["title"]["text"] == "Patch p (green)"
    sums = [(img[100:103, 90:93, c] * kernel).sum() for c in range(3)]
    tex = latex(at)
    assert r"\Sigma_{\text{red}} + \Sigma_{\text{green}} + \Sigma_{\text{blue}}" in tex
    assert f"{sums[1]:.4f}" in tex.replace("(", "").replace(")", "")
    assert float(at.metric[0].value) == pytest.approx(sum(sums), abs=1e-4)


def test_grayscale_has_no_channel_selector(no_local_data):
    at = page(sample=BARS)
    assert not [r for r in at.radio if r.key == "conv.ch"]
    assert figure(at, "conv.fig_patch")["layout"]["title"]["text"] == "Patch p"


def test_feature_map_has_robust_colours_and_click_targets(no_local_data):
    at = page(sample="Photo: Grace Hopper (RGB)", keep_rgb="1")
    img = data.load_sample_image("Photo: Grace Hopper (RGB)").data
    fmap = conv.run_playground(img, conv.preset_kernel("vertical line", 3), 0.0, 1, "valid", "none").feature_map
    lo, hi = conv.robust_limits(fmap)
    heat, targets = figure(at, "conv.fm_click")["data"]
    assert (heat["zmin"], heat["zmax"]) == pytest.approx((lo, hi), abs=1e-6)
    assert hi < 0.5 * float(np.abs(fmap).max())                    # the extremes no longer set the scale
    assert targets["mode"] == "text" and len(values(targets["x"])) == 85 * 72   # every 3rd cell of 254 × 216
    assert any("1st to 99th percentile" in c.value and "3 cells apart" in c.value for c in at.caption)


def test_worked_example_sum_is_broken_into_lines(no_local_data):
    at = page()
    [tex] = [x.value for x in at.latex if "(-0.4)(-1)" in x.value]
    assert tex.count(r"\\") == 3 and r"\\ &= -1.4\end{aligned}" in tex  # 3 lines of products, then the result
