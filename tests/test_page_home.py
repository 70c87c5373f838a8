"""The router and the home page: sections, every page reachable, the learning-outcome map."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from conftest import APP

from dnn2ui.pages import LEARNING_OUTCOMES, PAGES, SECTIONS


def test_every_learning_outcome_maps_to_a_page():
    for number in LEARNING_OUTCOMES:
        assert any(number in p.outcomes for p in PAGES), number
    assert {p.section for p in PAGES} == set(SECTIONS)


def test_home_renders_outcomes_and_links():
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "DNN2 Studio"
    text = " ".join(m.value for m in at.markdown)
    for outcome in LEARNING_OUTCOMES.values():
        assert outcome in text
    assert "Data in use" in " ".join(m.value for m in at.sidebar.markdown)
    # the device box is always there; whether TensorFlow is loaded depends on earlier tests in this
    # process (tests/test_imports.py checks the lazy loading in a fresh interpreter)
    assert "Compute device" in " ".join(m.value for m in at.sidebar.markdown)
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "not loaded yet" in captions or "TensorFlow" in captions


def test_every_page_renders_without_exception():
    at = AppTest.from_file(APP, default_timeout=60).run()
    for p in PAGES:
        at.switch_page(p.path).run()
        assert not at.exception, (p.path, at.exception)
        assert at.title[0].value == p.title
