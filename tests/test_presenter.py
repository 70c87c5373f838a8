"""Presenter view (?present=1): the style is injected, figures get larger text, settings fold away,
the sidebar starts collapsed, the toggle writes the link, and learners see none of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import streamlit as st

from conftest import open_page, qp
from dnn2core import plots
from dnn2ui import present

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def page_config(monkeypatch):
    """What app.py asked of st.set_page_config (AppTest does not expose it)."""
    calls: list[dict] = []
    real = st.set_page_config

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)
    monkeypatch.setattr(st, "set_page_config", spy)
    return calls


def styles(at) -> list[str]:
    return [h.value for h in at.get("html") if present.MARKER in h.value]


def font_sizes(at) -> list[float | None]:
    return [json.loads(c.proto.spec)["layout"].get("font", {}).get("size") for c in at.get("plotly_chart")]


def expanders(at) -> dict[str, bool]:
    return {e.label: e.proto.expanded for e in at.expander}


def app(**params):
    """The app through app.py's navigation (its home page), where the view is set up for every page.

    AppTest runs a page opened with switch_page() as a file of its own (Streamlit's pages/ folder
    mode), without app.py: page-level checks there carry the view in the session, as a page switch does."""
    from streamlit.testing.v1 import AppTest

    from conftest import APP

    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def again(at):
    """Run the app again through app.py: after its first run AppTest would run the home page file on
    its own (pages/ folder mode), skipping app.py, where the toggle and the style live."""
    at._page_hash, at._finished_page_script_hash = None, ""  # "" = the main script (app.py)
    at.run()
    assert not at.exception, at.exception
    return at


def test_present_1_injects_the_style_collapses_the_sidebar_and_stays_in_the_link(page_config):
    at = app(present="1")
    [css] = styles(at)
    assert "html { font-size: 20px !important; }" in css
    assert page_config[-1]["initial_sidebar_state"] == "collapsed"
    assert at.toggle(key="_present.toggle").value is True
    assert qp(at, "present") == "1"
    assert [b for b in at.button if b.key == "_present.exit"]
    # the view lives in the session: a page opened next is presented too (Streamlit drops the query)
    at.switch_page("pages/convolution.py").run()
    assert expanders(at)["Filter and kernel"] is False  # the feature map comes up above the fold
    sizes = font_sizes(at)
    assert sizes and all(s == 18 for s in sizes)  # every figure's text 1.5x Plotly's 12 px
    assert not [c for c in at.caption if "address bar" in c.value]  # the share note is not projected
    at = app()  # a fresh session without the parameter is a learner's
    assert not styles(at) and page_config[-1]["initial_sidebar_state"] == "auto"


def test_exit_and_toggle_write_the_link(page_config):
    at = app(present="1")
    at.button(key="_present.exit").click()
    again(at)
    assert not styles(at) and "present" not in at.query_params
    assert page_config[-1]["initial_sidebar_state"] == "auto"
    assert at.toggle(key="_present.toggle").value is False
    at.toggle(key="_present.toggle").set_value(True)
    again(at)
    assert qp(at, "present") == "1" and styles(at)
    assert page_config[-1]["initial_sidebar_state"] == "collapsed"
    at.toggle(key="_present.toggle").set_value(False)
    again(at)
    assert "present" not in at.query_params and not styles(at)


def test_learners_see_the_pages_as_before():
    present.install_figure_hook()  # installed by app.py in a server; here pages run on their own
    at = open_page("pages/convolution.py")
    assert "Filter and kernel" not in expanders(at)  # a plain container for learners, as before
    assert all(s is None for s in font_sizes(at))
    assert [c for c in at.caption if "address bar" in c.value]


def test_training_pages_fold_their_settings_only_while_presenting(no_local_data):
    learner = open_page("pages/mnist.py", n="500", epochs="1")
    assert expanders(learner)["Training settings"] is True
    projected = open_page("pages/mnist.py", n="500", epochs="1", session={"_present.on": True})
    assert expanders(projected)["Training settings"] is False
    assert qp(projected, "epochs") == "1"  # the link's settings still apply


def test_presenter_figure_is_a_larger_copy():
    fig = plots.matrix_figure(np.eye(3), "Kernel f")
    fig.update_layout(title_font_size=20)
    fig.add_annotation(text="note", font=dict(size=10), x=0, y=0)
    big = plots.presenter_figure(fig)
    assert big is not fig
    assert (big.layout.font.size, big.layout.title.font.size, big.layout.annotations[0].font.size) == (18, 30, 15)
    assert big.data[0].textfont.size == 18  # the numbers written in the kernel's cells
    assert (big.layout.height, big.layout.margin.t) == (260, 60)  # same height: it stays above the fold
    # the original (possibly shared through a cache) is untouched
    assert (fig.layout.font.size, fig.layout.title.font.size, fig.layout.height) == (None, 20, 260)
    curves = plots.training_curves_figure(__import__("pandas").DataFrame(
        {"model": ["A"], "epoch": [1], "metric": ["loss"], "value": [0.5]}), "loss")
    assert plots.presenter_figure(curves).layout.font.size == 18
