"""AppTest of the convolution playground: its controls, the numbers it shows, bad input."""

from __future__ import annotations

import io

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


def test_defaults_show_formula_and_output(no_local_data):
    at = page(sample="Synthetic: bars, disc and diagonal (grayscale)")
    # 96x96 input, 3x3 kernel, stride 1, valid: floor((96-3)/1)+1 = 94
    assert r"\left\lfloor \frac{96 - 3}{1} \right\rfloor + 1 = 94" in latex(at)
    assert qp(at, "preset") == "vertical line"
    assert "94x94" in " ".join(m.value for m in at.markdown)  # pooling sizes 94x94 -> 47x47
    assert "47x47" in " ".join(m.value for m in at.markdown)


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
    assert any("Uploaded 800x600, downscaled to 256x192" in c.value for c in at.sidebar.caption)


def test_empty_kernel_cell_is_refused(no_local_data):
    at = page(sample="Synthetic: bars, disc and diagonal (grayscale)")
    editor = at.get("arrow_data_editor") if hasattr(at, "get") else []
    # simulate the learner clearing a cell: the page must say which cell and not crash
    with pytest.raises(ValueError, match="Row 2, column 2 .* empty"):
        conv.parse_kernel([[0, 1, 0], [1, None, 1], [0, 1, 0]])
    assert editor is not None
