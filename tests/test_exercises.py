""""Try this": every page ends with 2-4 exercises; each sets the page up with one click (to values its
widgets accept), reveals its explanation once the learner predicts, and reads a matching run."""

from __future__ import annotations

import pytest

from conftest import open_page

from dnn2core import exercises as ex

pytestmark = pytest.mark.timeout(600)

PAGES = {"convolution": "pages/convolution.py", "mnist": "pages/mnist.py", "cats_dogs": "pages/cats_dogs.py",
         "inside": "pages/inside.py", "sequences": "pages/sequences.py", "housing": "pages/housing.py",
         "tricks": "pages/tricks.py"}
PREFIX = {"convolution": "conv"}  # the page's URL-settings prefix, where it differs from its name


def test_every_page_has_two_to_four_well_formed_exercises():
    assert set(ex.EXERCISES) == set(PAGES)
    for page, items in ex.EXERCISES.items():
        assert 2 <= len(items) <= 4, page
        assert len({e.key for e in items}) == len(items)
        for e in items:
            assert e.outcome in ex.OUTCOMES and 0 <= e.answer < len(e.choices) and len(e.choices) >= 2
            assert e.question.strip() and len(e.explain) > 80  # an explanation, not a verdict


def test_a_run_is_read_only_when_its_settings_are_the_exercises():
    cnn = next(e for e in ex.for_page("mnist") if e.key == "cnn_vs_dense")
    settings = {"models": ["CNN", "Dense"], "n": 2000, "epochs": 3, "opt": "rmsprop", "lr": 0.001, "batch": 32,
                "seed": 7, "api": "sequential"}
    assert ex.applies_to(cnn, settings)
    assert not ex.applies_to(cnn, {**settings, "epochs": 4})
    assert not ex.applies_to(cnn, {**settings, "models": ["CNN"]})
    assert cnn.check({"CNN": {"test_accuracy": 0.981}, "Dense": {"test_accuracy": 0.962}}) == (
        "Your run: test accuracy CNN 98.1% against Dense 96.2% — as the course says.")
    assert "not this time" in cnn.check({"CNN": {"test_accuracy": 0.90}, "Dense": {"test_accuracy": 0.95}})
    assert cnn.check({"CNN": {"test_accuracy": 0.9}}) is None  # the run lacks the dense model
    lstm = next(e for e in ex.for_page("sequences") if e.key == "ranking")
    assert "as the course says" in lstm.check({"LSTM": {"val_mse": 0.01}, "Dense": {"val_mse": 0.02}})
    frozen = next(e for e in ex.for_page("cats_dogs") if e.key == "pretrained")
    said = frozen.check({"VGG16 frozen (random weights)": {"val_accuracy": 0.6},
                         "From scratch": {"val_accuracy": 0.65}})
    assert "VGG16 frozen (random weights) 60.0% against From scratch 65.0%" in said and "not this time" in said


@pytest.mark.parametrize("page", list(PAGES))
def test_set_it_up_applies_the_exercises_settings_and_a_prediction_reveals_why(page, no_local_data):
    at = open_page(PAGES[page])
    items = ex.for_page(page)
    assert [s.value for s in at.subheader if s.value == "Try this"] == ["Try this"]
    for item in items:
        base = f"{page}.try.{item.key}"
        if item.settings:
            at.button(key=f"{base}.setup").click().run()
            assert not at.exception, at.exception
            for name, value in item.settings.items():
                got = at.session_state[f"{PREFIX.get(page, page)}.{name}"]
                assert (sorted(got) == sorted(value)) if isinstance(value, (list, tuple)) else got == value, name
            assert not any("Ignored settings" in c.value for c in at.caption)  # every value was accepted
        assert not any(item.explain[:40] in m.value for m in at.markdown)  # hidden until a prediction
        at.radio(key=f"{base}.guess").set_value(item.choices[(item.answer + 1) % len(item.choices)]).run()
        assert any(m.value.startswith("🤔 The course expects") and item.explain[:40] in m.value for m in at.markdown)
        at.radio(key=f"{base}.guess").set_value(item.choices[item.answer]).run()
        assert any(m.value.startswith("✅") for m in at.markdown)
