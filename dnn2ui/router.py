"""Make sure every session goes through app.py's ``st.navigation``.

Streamlit decides once per process whether an app "uses the pages directory" (v1 multipage
apps): it does while a ``pages/`` folder exists and no ``st.navigation`` call has happened yet.
If a fresh server's first visitor opens a deep link such as ``/mnist``, Streamlit then runs
``pages/mnist.py`` directly, app.py never runs, and the whole server stays in v1 mode: no
sections, no shared sidebar. Pages call ``ensure_navigation()`` first; it switches the
process to ``st.navigation`` and reruns once, through app.py, on the same URL.
"""

from __future__ import annotations

import os

import streamlit as st

from dnn2ui.runtime import protect_keras_state


def ensure_navigation() -> None:
    protect_keras_state()  # every page calls this first: see dnn2ui/runtime.py
    # AppTest resets this flag before every run, so the rerun would swallow each simulated click;
    # the tests set DNN2_APPTEST=1 and the browser run (tests/e2e) checks deep links instead.
    if os.environ.get("DNN2_APPTEST"):
        return
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without v1 multipage apps: nothing to do
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
