"""The router and the home page: sections, every page reachable, the learning-outcome map."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from conftest import APP

from dnn2ui.pages import LEARNING_OUTCOMES, PAGES, SECTIONS, navigation


def test_every_learning_outcome_maps_to_a_page():
    for number in LEARNING_OUTCOMES:
        assert any(number in p.outcomes for p in PAGES), number
    assert {p.section for p in PAGES} == set(SECTIONS)


def test_navigation_follows_the_course_order():
    # Videos 1-4, then the Tricks of the Trade mini-lesson, then Videos 5, 6 and 7
    order = [p.url_path for _, infos in navigation() for p in infos]
    assert order == ["convolution", "mnist", "cats_dogs", "tricks", "inside", "sequences", "housing"]
    assert order == [p.url_path for p in PAGES]  # every other list of pages reads in the same order
    assert [p.course for p in PAGES] == ["Video 1", "Video 2", "Videos 3–4", "Mini-lesson", "Video 5",
                                         "Video 6", "Video 7"]
    assert all(infos for _, infos in navigation())  # no empty section
    app = open(APP).read()
    assert "navigation()" in app and "SECTIONS" not in app  # app.py builds its menu from that one list


def test_home_renders_outcomes_and_links():
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "DNN2 Studio"
    text = " ".join(m.value for m in at.markdown)
    for outcome in LEARNING_OUTCOMES.values():
        assert outcome in text
    labels = [link.proto.label for link in at.get("page_link")][-len(PAGES):]  # the Experiments list
    assert labels == [f"{p.course} · {p.title}" for p in PAGES]
    assert labels[3] == "Mini-lesson · Tricks of the trade"
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
