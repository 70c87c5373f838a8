"""Presenter view (``?present=1``): the dashboard on a projector at 1280x720.

Why one module: pages stay as they are. app.py calls ``setup()`` (before the page config, so the
sidebar starts collapsed), ``sidebar_toggle()`` and ``inject_css()``; pages open their settings with
``settings(...)``, which is collapsed in this view, so the key figure comes up above the fold. Every
Plotly figure is drawn through one hook (``install_figure_hook``) that enlarges its text for
presenting sessions only; nothing changes for learners.

The view lives in the session (Streamlit drops query parameters on a page switch) and is written
back to the link, so the instructor's address bar always says ``present=1`` while it is on.
"""

from __future__ import annotations

import functools
from typing import Any

import streamlit as st

from dnn2core import plots

PARAM = "present"
_SESSION = "_present.on"  # this session presents (read by the figure hook)
_TOGGLE = "_present.toggle"
MARKER = "dnn2-presenter"  # names the injected style, so tests (and a curious instructor) can find it

CSS = f"""<style>
/* {MARKER}: larger text, less chrome, the figures up top */
html {{ font-size: 20px !important; }}
[data-testid="stMainBlockContainer"], .block-container {{
  padding-top: 3.6rem !important; padding-left: 1.5rem !important; padding-right: 1.5rem !important;
  max-width: 100% !important; }}
h1 {{ font-size: 2.0rem !important; padding-top: 0 !important; }}
[data-testid="stSidebar"][aria-expanded="true"] {{ min-width: 18rem; }}
</style>"""


def _parse(raw: str | None) -> bool | None:
    if raw is None:
        return None
    return raw.strip().lower() in ("1", "true", "yes", "on")


def setup() -> bool:
    """Whether this run is presented: ``?present=`` when the link has it, else the session's choice.
    Writes the choice back to the link and installs the figure hook (once per process)."""
    from_link = _parse(st.query_params.get(PARAM))
    on = bool(st.session_state.get(_SESSION, False)) if from_link is None else from_link
    st.session_state[_SESSION] = on
    if on and st.query_params.get(PARAM) != "1":
        st.query_params[PARAM] = "1"
    elif not on and PARAM in st.query_params:
        del st.query_params[PARAM]
    install_figure_hook()
    return on


def active() -> bool:
    """This session presents (False outside a script run)."""
    try:
        return bool(st.session_state.get(_SESSION, False))
    except Exception:  # noqa: BLE001 - no script context (a worker thread): never presenting
        return False


def sidebar_state() -> str:
    """``initial_sidebar_state`` for st.set_page_config: collapsed while presenting."""
    return "collapsed" if active() else "auto"


def _toggled() -> None:
    on = bool(st.session_state.get(_TOGGLE))
    st.session_state[_SESSION] = on
    if on:
        st.query_params[PARAM] = "1"
    elif PARAM in st.query_params:
        del st.query_params[PARAM]


def sidebar_toggle() -> None:
    """The switch in the sidebar; it writes ``present=1`` to the link (and removes it)."""
    st.session_state[_TOGGLE] = active()
    st.sidebar.toggle("Presenter view", key=_TOGGLE, on_change=_toggled,
                      help="Larger text and figures, settings folded away, the sidebar collapsed: for a projector. "
                           "The link gets present=1, so a bookmark opens the view.")


def inject_css() -> None:
    """The presenter style, once per script run, only while presenting (style-only HTML takes no space)."""
    if active():
        st.html(CSS)


def exit_button() -> None:
    """At the foot of a presented page: the way back without opening the collapsed sidebar."""
    if active():
        st.divider()
        st.button("Exit presenter view", key="_present.exit", on_click=_exit, type="tertiary")


def _exit() -> None:
    st.session_state[_SESSION] = False
    if PARAM in st.query_params:
        del st.query_params[PARAM]


def settings(label: str, *, folded_only_when_presenting: bool = False, where: Any = st):
    """A page's settings block: an expander, open for learners and folded while presenting.

    ``folded_only_when_presenting`` keeps a page that shows its settings without an expander as it
    is for learners (a plain container) and folds them into an expander only while presenting."""
    if folded_only_when_presenting and not active():
        return where.container()
    return where.expander(label, expanded=not active())


# --------------------------------------------------------------------------------------------
# One hook for every Plotly figure
# --------------------------------------------------------------------------------------------

_INSTALLED = False


def install_figure_hook() -> bool:
    """Route ``st.plotly_chart`` (and ``column.plotly_chart``) through ``plots.presenter_figure`` for
    presenting sessions. Installed once per process; learners' figures pass through untouched.

    Why a hook and not a helper in every page: pages draw some forty figures with ``st.plotly_chart``;
    the view must not ask each of them to remember it. False when this Streamlit lays its API out
    differently (the view then enlarges text through CSS only)."""
    global _INSTALLED
    if _INSTALLED:
        return True
    try:
        from streamlit.delta_generator import DeltaGenerator
    except ImportError:
        return False
    original = getattr(DeltaGenerator, "plotly_chart", None)
    if original is None or getattr(original, "_dnn2_presenter", False):
        _INSTALLED = original is not None
        return _INSTALLED

    @functools.wraps(original)
    def plotly_chart(self, figure_or_data, *args, **kwargs):
        if active():
            try:
                import plotly.graph_objects as go

                if isinstance(figure_or_data, go.Figure):
                    figure_or_data = plots.presenter_figure(figure_or_data)
            except Exception:  # noqa: BLE001 - a figure the hook cannot enlarge is drawn as it is
                pass
        return original(self, figure_or_data, *args, **kwargs)

    plotly_chart._dnn2_presenter = True  # type: ignore[attr-defined]
    DeltaGenerator.plotly_chart = plotly_chart  # type: ignore[method-assign]
    main = getattr(st, "_main", None)
    if main is not None:  # st.plotly_chart was bound to the main container when Streamlit was imported
        st.plotly_chart = functools.partial(plotly_chart, main)  # type: ignore[assignment]
    _INSTALLED = True
    return True
