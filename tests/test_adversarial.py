"""The one-pixel attack (dnn2core.adversarial) against hand-built models whose answer is known.

A linear softmax model on 4x4 images with weights set by hand: the class flips only when one
specific pixel is bright, so the attack must find exactly that pixel."""

from __future__ import annotations

import numpy as np
import pytest

from dnn2core import adversarial


def pixel_switch_model(switches: dict[tuple[int, int, int], int], n_classes: int = 2, shape=(4, 4, 1)):
    """Class 0 by default (logit 1); class c wins when pixel (row, col, channel) is above 0.6."""
    import keras

    inputs = keras.Input(shape)
    dense = keras.layers.Dense(n_classes, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    weights = np.zeros((int(np.prod(shape)), n_classes), np.float32)
    bias = np.zeros(n_classes, np.float32)
    bias[0] = 1.0
    for (r, c, ch), cls in switches.items():
        weights[np.ravel_multi_index((r, c, ch), shape), cls] = 10.0
        bias[cls] = -5.0
    dense.set_weights([weights, bias])
    return model


class Counting:
    """Wraps a model and records the size of every batch it is asked to score."""

    def __init__(self, model):
        self.model = model
        self.batches: list[int] = []

    def __call__(self, x):
        self.batches.append(len(x))
        return self.model(x)


def changed_pixels(a: np.ndarray, b: np.ndarray) -> int:
    a = a.reshape(a.shape[0], a.shape[1], -1)
    b = b.reshape(b.shape[0], b.shape[1], -1)
    return int(np.any(a != b, axis=-1).sum())


@pytest.fixture(scope="module")
def switch():
    return pixel_switch_model({(2, 1, 0): 1})


def test_attack_finds_the_one_pixel_that_flips_the_class(switch):
    image = np.zeros((4, 4, 1), np.float32)
    res = adversarial.one_pixel_attack(switch, image, 0, 1, maxiter=50, popsize=20, seed=0)
    assert res.success and not res.already
    assert res.prediction_before == 0 and res.prediction_after == 1
    assert len(res.pixels) == 1
    row, col, value = res.pixels[0]
    assert (row, col) == (2, 1) and value > 0.6
    assert changed_pixels(image, res.image) == 1 and res.image[2, 1, 0] == pytest.approx(value)
    assert res.before[0] > 0.99 and res.after[1] > 0.5
    np.testing.assert_allclose(res.after, np.asarray(switch(res.image[None]))[0], atol=1e-6)


def test_model_is_called_in_batches_and_stops_at_success(switch):
    counted = Counting(switch)
    res = adversarial.one_pixel_attack(counted, np.zeros((4, 4, 1), np.float32), 0, 1, maxiter=50, popsize=20, seed=3)
    assert res.success
    # the clean image, the initial population, then one batch per generation until success
    assert counted.batches == [1] + [20] * (res.generations + 1)
    assert res.calls == len(counted.batches) and res.queries == sum(counted.batches)
    assert res.generations < 5  # stopped early, far from the 50 allowed
    assert len(res.confidence_curve) == res.generations + 1


@pytest.mark.parametrize("pixels", [1, 2, 3])
def test_never_changes_more_pixels_than_asked(pixels):
    """A model that no small change can fool: the whole budget is spent, within the pixel limit."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    w, b = model.layers[-1].get_weights()
    model.layers[-1].set_weights([w * 0.01, np.array([5.0, 0.0, 0.0], np.float32)])  # always class 0
    image = np.random.default_rng(1).random((6, 6)).astype(np.float32)
    counted = Counting(model)
    res = adversarial.one_pixel_attack(counted, image, 0, pixels, maxiter=4, popsize=12, seed=pixels)
    assert not res.success and res.generations == 4
    assert res.image.shape == (6, 6)
    assert changed_pixels(image, res.image) <= pixels
    assert len(res.pixels) <= pixels
    assert res.queries == 1 + 12 * 5 and counted.batches == [1] + [12] * 5
    curve = res.confidence_curve
    assert all(later <= earlier + 1e-12 for earlier, later in zip(curve, curve[1:]))  # best so far


def test_five_pixels_on_the_course_cnn_stay_five():
    from dnn2core.models import build_mnist_cnn

    import keras

    keras.utils.set_random_seed(0)
    model = build_mnist_cnn()
    image = np.zeros((28, 28, 1), np.float32)
    image[8:20, 12:16] = 1.0
    label = int(np.argmax(model.predict_on_batch(image[None])))
    res = adversarial.one_pixel_attack(model, image, label, 5, maxiter=3, popsize=30, seed=0)
    assert changed_pixels(image, res.image) <= 5 and len(res.pixels) <= 5
    assert res.queries <= 1 + 30 * 4


def test_targeted_attack_reaches_the_chosen_class():
    model = pixel_switch_model({(0, 3, 0): 2, (3, 0, 0): 1}, n_classes=3)
    image = np.zeros((4, 4), np.float32)  # grayscale without a channel axis works too
    for target, where in ((2, (0, 3)), (1, (3, 0))):
        res = adversarial.one_pixel_attack(model, image, 0, 1, maxiter=50, popsize=20, seed=1, targeted=target)
        assert res.success and res.prediction_after == target
        assert res.pixels[0][:2] == where and res.image.shape == (4, 4)
        assert res.target_curve[-1] == pytest.approx(res.after[target])


def test_colour_images_change_all_three_channels_of_one_pixel():
    model = pixel_switch_model({(1, 2, 0): 1}, shape=(4, 4, 3))  # a red pixel at (1, 2)
    image = np.zeros((4, 4, 3), np.float32)
    res = adversarial.one_pixel_attack(model, image, 0, 1, maxiter=50, popsize=20, seed=1)
    assert res.success
    row, col, red, green, blue = res.pixels[0]
    assert (row, col) == (1, 2) and red > 0.6
    assert changed_pixels(image, res.image) == 1


def test_value_range_bounds_the_new_values():
    model = pixel_switch_model({(2, 2, 0): 1})
    res = adversarial.one_pixel_attack(lambda x: model(x / 255.0), np.zeros((4, 4, 1), np.float32), 0, 1,
                                       maxiter=30, popsize=20, seed=0, value_range=(0.0, 255.0))
    assert res.success and 153 < res.pixels[0][2] <= 255.0


def test_a_sigmoid_model_gets_two_class_probabilities():
    import keras

    inputs = keras.Input((4, 4, 1))
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    w = np.zeros((16, 1), np.float32)
    w[5] = 10.0
    dense.set_weights([w, np.array([-5.0], np.float32)])
    res = adversarial.one_pixel_attack(model, np.zeros((4, 4, 1), np.float32), 0, 1, maxiter=30, popsize=20, seed=0)
    assert res.before.shape == (2,) and res.before.sum() == pytest.approx(1.0)
    assert res.success and res.pixels[0][:2] == (1, 1)


def test_callback_sees_every_generation_and_can_stop():
    seen = []
    res = adversarial.one_pixel_attack(lambda x: np.full((len(x), 2), 0.5) + [0.01, -0.01],
                                       np.zeros((4, 4, 1), np.float32), 0, 1, maxiter=20, popsize=10,
                                       callback=lambda g, conf, q: seen.append((g, conf, q)) or g >= 3)
    assert [s[0] for s in seen] == [1, 2, 3] and res.generations == 3 and not res.success
    assert seen[-1][2] == res.queries == 1 + 10 * 4


def test_an_image_already_misclassified_is_not_attacked(switch):
    image = np.zeros((4, 4, 1), np.float32)
    image[2, 1] = 1.0
    res = adversarial.one_pixel_attack(switch, image, 0, 1, maxiter=10, popsize=10)
    assert res.already and res.success and res.pixels == () and res.queries == 1
    np.testing.assert_array_equal(res.image, image)


@pytest.mark.parametrize("kwargs,message", [
    (dict(label=2), "2 classes"),
    (dict(label=0, targeted=0), "other than the true class"),
    (dict(label=0, pixels=0), "pixels must be"),
    (dict(label=0, popsize=3), "at least 5"),
    (dict(label=0, maxiter=0), "at least 1 generation"),
])
def test_bad_settings_are_refused_with_a_reason(switch, kwargs, message):
    label = kwargs.pop("label")
    pixels = kwargs.pop("pixels", 1)
    with pytest.raises(ValueError, match=message):
        adversarial.one_pixel_attack(switch, np.zeros((4, 4, 1), np.float32), label, pixels, **kwargs)
    with pytest.raises(ValueError, match="HxW"):
        adversarial.one_pixel_attack(switch, np.zeros((4, 4, 2), np.float32), 0, 1)


def test_batch_mode_reports_success_rate_and_skips_wrong_images(switch):
    images = np.zeros((4, 4, 4, 1), np.float32)
    images[3, 2, 1] = 1.0  # the model already calls this one class 1
    calls = []
    frame, summary = adversarial.attack_many(switch, images, [0, 0, 0, 0], pixels=1, maxiter=30, popsize=20,
                                             progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert summary["attacked"] == 3 and summary["skipped"] == 1 and summary["successes"] == 3
    assert summary["success_rate"] == 1.0 and summary["mean_queries"] >= 41
    assert frame["skipped"].tolist() == [False, False, False, True]


def test_figures_circle_every_changed_pixel():
    img = np.zeros((4, 4), np.float32)
    fig = adversarial.attack_figure(img, img, [(1, 2, 1.0), (3, 0, 0.5)], ["a", "b"])
    assert len([s for s in fig.layout.shapes if s.type == "circle"]) == 4
    fig = adversarial.probabilities_figure(np.array([0.9, 0.1]), np.array([0.2, 0.8]), ["cat", "dog"])
    assert len(fig.data) == 2
    fig = adversarial.confidence_figure([0.9, 0.5], "3", [0.1, 0.4], "5", maxiter=10)
    assert len(fig.data) == 2


def test_attack_result_is_a_frozen_record_with_the_seeds_values(switch):
    """A fixed seed gives one exact result; its fields are typed attributes that nobody can change."""
    import dataclasses

    res = adversarial.one_pixel_attack(switch, np.zeros((4, 4, 1), np.float32), 0, 1, maxiter=50, popsize=20, seed=0)
    assert isinstance(res, adversarial.AttackResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.success = False
    assert (res.label, res.target, res.targeted, res.pixels_asked, res.popsize, res.maxiter) == (0, None, False, 1, 20, 50)
    assert res.success and not res.already and (res.prediction_before, res.prediction_after) == (0, 1)
    # the initial population did not fool it, the first generation did: 1 + 20 + 20 queries in 3 batched calls
    assert (res.generations, res.queries, res.calls) == (1, 41, 3)
    [(row, col, value)] = res.pixels
    assert (row, col) == (2, 1) and value == pytest.approx(0.9340435, abs=1e-6)
    assert res.confidence_curve == pytest.approx((0.0342098, 0.0342098), abs=1e-6)
    assert res.target_curve is None and res.message == "Fooled after 1 generation(s) and 41 queries."
    assert res.pixel_rows() == [{"row": 2, "column": 1, "value": value}]
    assert adversarial.AttackSettings(pixels=1, popsize=20, maxiter=50).query_budget == 20 * 51 + 1


def test_batch_task_reports_progress_and_stops_when_the_job_says_so(switch):
    class Job:
        def __init__(self, stop_after: int):
            self.reports: list[tuple[str, int, int]] = []
            self.stop_after = stop_after

        def report_task(self, name, done, total):
            self.reports.append((name, done, total))

        def should_stop(self):
            return "Stopped" if len(self.reports) >= self.stop_after else None

    images = np.zeros((3, 4, 4, 1), np.float32)
    task = adversarial.batch_task(switch, images, [0, 0, 0], adversarial.AttackSettings(1, 20, 30, seed=0))
    job = Job(stop_after=99)
    out = task(job, "One-pixel attack")
    assert job.reports == [("One-pixel attack", i, 3) for i in (1, 2, 3)]
    assert out["summary"]["attacked"] == 3 and len(out["rows"]) == 3
    job = Job(stop_after=1)
    out = task(job, "One-pixel attack")
    assert out["summary"]["attacked"] == 1 and len(out["rows"]) == 1
