"""The course's MNIST models, the digit helpers, evaluation, and accuracy floors on fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest

from dnn2core import data, digits, evaluation, models


@pytest.mark.parametrize("api", ["sequential", "functional"])
def test_dense_has_the_course_parameter_count(api):
    m = models.build_mnist_dense(api)
    assert models.param_totals(m) == {"total": 50_890, "trainable": 50_890, "non_trainable": 0}
    frame = models.summary_frame(m)
    assert frame["params"].tolist()[-2:] == [50_240, 650]
    assert m.loss == "sparse_categorical_crossentropy" and type(m.optimizer).__name__ == "RMSprop"


@pytest.mark.parametrize("api", ["sequential", "functional"])
def test_cnn_has_the_course_parameter_count_and_shapes(api):
    m = models.build_mnist_cnn(api)
    assert models.param_totals(m)["total"] == 104_202
    frame = models.summary_frame(m)
    frame = frame[frame["type"] != "InputLayer"]
    assert frame["params"].tolist() == [320, 0, 18_496, 0, 73_856, 0, 11_530]
    assert frame["output shape"].tolist() == ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)",
                                              "(None, 5, 5, 64)", "(None, 3, 3, 128)", "(None, 1152)", "(None, 10)"]
    conv = models.first_conv_arithmetic(m)
    assert conv == {"kh": 3, "kw": 3, "channels": 1, "filters": 32, "params": 320, "formula": 320}


def test_optimizer_choice_and_learning_rate():
    m = models.build_mnist_dense(optimizer="adam", learning_rate=0.01)
    assert type(m.optimizer).__name__ == "Adam"
    assert float(m.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    with pytest.raises(ValueError):
        models.make_optimizer("adagradish")


def test_prepare_and_shapes(no_local_data):
    m = data.load_mnist().data
    split = digits.prepare(m, train_size=300, seed=1)
    assert split.x_train.shape == (300, 28, 28) and split.x_train.max() <= 1.0
    again = digits.prepare(m, train_size=300, seed=1)
    np.testing.assert_array_equal(split.y_train, again.y_train)
    assert digits.as_input(split.x_train, "dense").shape == (300, 784)
    assert digits.as_input(split.x_train, "cnn").shape == (300, 28, 28, 1)
    with pytest.raises(ValueError):
        digits.prepare(m, train_size=5)


def test_shift_moves_pixels_without_wrapping():
    x = np.zeros((28, 28))
    x[10, 10] = 1.0
    s = digits.shift(x, -3, 4)
    assert s[7, 14] == 1.0 and s.sum() == 1.0
    assert digits.shift(x, 0, 30).sum() == 0
    corner = digits.to_top_right(np.ones((1, 28, 28)), scale=0.5)
    assert corner[0, :14, 14:].min() > 0.9 and corner[0, 14:, :].max() == 0


def test_digit_from_uploaded_photo_is_mnist_like():
    photo = np.full((120, 90), 240, dtype=np.uint8)  # dark stroke on light paper
    photo[20:100, 40:52] = 10
    d = digits.digit_from_image(photo)
    assert d.shape == (28, 28) and d.max() == pytest.approx(1.0)
    ys, xs = np.nonzero(d > 0.2)
    assert ys.max() - ys.min() + 1 <= 20            # fits MNIST's 20x20 box
    assert abs(ys.mean() - 13.5) < 1.5 and abs(xs.mean() - 13.5) < 1.5  # centred by mass
    assert d[0].max() == 0                          # background is black, as in MNIST
    with pytest.raises(ValueError, match="blank"):
        digits.digit_from_image(np.full((20, 20), 255, dtype=np.uint8))


def test_confusion_and_per_class_and_misclassified():
    y = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    cm = evaluation.confusion_matrix(y, pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    np.testing.assert_allclose(evaluation.per_class_accuracy(cm), [0.5, 1.0, 0.0])
    probs = np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0, 1, 0], [0, 1, 0], [0.6, 0, 0.4]])
    assert evaluation.misclassified(probs, y).tolist() == [1, 4]  # most confidently wrong first


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_accuracy_floors_on_the_embedded_sample(no_local_data):
    """Fixed seed, the real 5,000-digit sample: the CNN clears 90% and beats the dense net."""
    import keras

    split = digits.prepare(data.load_mnist().data, seed=0)
    keras.utils.set_random_seed(0)
    acc = {}
    for name, build in (("dense", models.build_mnist_dense), ("cnn", models.build_mnist_cnn)):
        m = build()
        m.fit(digits.as_input(split.x_train, name), split.y_train, epochs=3, batch_size=32, verbose=0)
        acc[name] = m.evaluate(digits.as_input(split.x_test, name), split.y_test, verbose=0)[1]
    assert acc["cnn"] > 0.90, acc
    assert acc["dense"] > 0.80, acc
    assert acc["cnn"] > acc["dense"], acc


def test_a_digit_drawn_on_the_canvas_becomes_an_mnist_digit_and_a_blank_pad_none():
    import io

    from PIL import Image, ImageDraw

    from dnn2core.digits import CANVAS_SIDE, CANVAS_STROKE, digit_from_canvas
    from dnn2core.uploads import UploadError

    def png(draw_one: bool, side: int = CANVAS_SIDE) -> bytes:
        im = Image.new("RGBA", (side, side), (0, 0, 0, 255))
        if draw_one:  # a "1": one vertical stroke, off centre as a learner draws it
            ImageDraw.Draw(im).line([(90, 40), (90, 240)], fill=(255, 255, 255, 255), width=CANVAS_STROKE)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()

    assert digit_from_canvas(None) is None and digit_from_canvas(png(False)) is None
    digit = digit_from_canvas(png(True))
    assert digit.shape == (28, 28) and digit.dtype == np.float32 and digit.max() == pytest.approx(1.0, abs=0.05)
    rows, cols = np.nonzero(digit > 0.2)
    assert rows.max() - rows.min() + 1 in (19, 20, 21)  # scaled into MNIST's 20-pixel box
    assert cols.max() - cols.min() + 1 <= 6  # still a thin stroke
    assert abs((digit.sum(axis=0) * np.arange(28)).sum() / digit.sum() - 13.5) < 1  # centred by mass
    with pytest.raises(UploadError):
        digit_from_canvas(b"\x89PNG\r\n\x1a\n not really")


def test_network_diagram_wraps_into_rows_with_readable_text():
    import pandas as pd

    from dnn2core.models import network_figure

    frame = pd.DataFrame({"layer": [f"l{i}" for i in range(7)],
                          "type": ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"],
                          "output shape": ["(None, 26, 26, 32)"] * 7, "params": [320, 0, 18496, 0, 0, 692352, 1290]})
    fig = network_figure(frame)
    boxes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(boxes) == 7 and len({b.y0 for b in boxes}) == 2  # 4 + 3: two rows
    assert min(a.font.size for a in fig.layout.annotations if a.text) >= 13
    assert [a.text for a in fig.layout.annotations if a.text][:3] == ["<b>Conv2D</b>", "(26, 26, 32)", "320 params"]
    assert fig.layout.height == 20 + 120 * 2
    assert len([s for s in fig.layout.shapes if s.type == "path"]) == 1  # the arrow on to the second row
