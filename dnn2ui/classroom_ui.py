"""What the instructor's controls look like to everyone: the pause banner, a pushed link, short
links (``/?go=<id>``), and the instructor page's key field.

The state itself (pause, pushed links) is in the run store's flags (``dnn2core.classroom``), read
through a small store of its own here so the home page never starts the training machinery.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

import streamlit as st

from dnn2core import classroom
from dnn2core.runs import RunStore, StoreError, default_runs_dir
from dnn2ui import present
from dnn2ui.pages import PageInfo, by_url_path

_UNLOCKED = "_instructor.unlocked"  # a digest of the key this session entered (a new key locks it again)
_TRIED = "_instructor.tried"  # a digest of the last key that was compared, so a rerun does not count it twice
_DISMISSED = "_classroom.dismissed"  # pushed links this learner closed


@st.cache_resource(show_spinner=False, max_entries=4)
def _flag_store(runs_dir: str) -> RunStore | None:
    try:
        return RunStore(runs_dir)
    except StoreError:
        return None


def flags() -> RunStore | None:
    """The run store that holds the flags (None when it cannot be opened: no banners then)."""
    return _flag_store(str(default_runs_dir()))


def _url_paths() -> set[str]:
    return set(by_url_path())


# --------------------------------------------------------------------------------------------
# Learners: banners and short links
# --------------------------------------------------------------------------------------------


def clear_page_settings(info: PageInfo) -> None:
    """Forget this session's settings of a page, so the link's settings apply when it opens."""
    prefix = info.prefix + "."
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]
    stored = st.session_state.get("_url_store", {})
    for key in [k for k in stored if k.startswith(prefix)]:
        del stored[key]


def follow_short_link(pages: Mapping[str, Any]) -> None:
    """``/?go=<id>``: open the pushed page with its settings. ``pages`` maps a URL path to its st.Page.

    An unknown or malformed id says so and opens nothing."""
    raw = st.query_params.get("go")
    if raw is None:
        return
    del st.query_params["go"]
    store = flags()
    link = classroom.resolve(store, raw, _url_paths()) if store is not None else None
    if link is None or link.page not in pages:
        st.warning("That short link is not known on this server: check the code on the board (8 letters and "
                   "digits after go=).")
        return
    clear_page_settings(by_url_path()[link.page])
    _switch(pages[link.page], link.params)


def _switch(page: Any, params: tuple) -> None:
    try:
        st.switch_page(page, query_params=dict(params))
    except TypeError:  # a Streamlit whose switch_page takes no query parameters: the page opens as it was
        st.switch_page(page)


def _open(page: str, params: tuple) -> None:
    clear_page_settings(by_url_path()[page])
    st.session_state["_classroom.open"] = (page, params)


def banners(pages: Mapping[str, Any], current: str = "") -> None:
    """At the top of every page: trainings paused, and the link the instructor pushed (with a button
    that opens it in this tab). Hidden while presenting and on the instructor page itself."""
    opening = st.session_state.pop("_classroom.open", None)
    if opening is not None and opening[0] in pages:
        _switch(pages[opening[0]], opening[1])
    store = flags()
    if store is None:
        return
    try:
        if classroom.paused(store) is not None:
            st.warning("⏸ " + classroom.PAUSED_WORDS)
        link = classroom.current_push(store, _url_paths())
    except StoreError:
        return
    dismissed = st.session_state.setdefault(_DISMISSED, set())
    if link is None or link.id in dismissed or present.active() or current == "instructor":
        return
    title = by_url_path()[link.page].title
    text, go, close = st.columns([6, 1, 1], vertical_alignment="center")
    text.info(f"📣 Your instructor shares an experiment: **{title}**"
              + (" with their settings." if link.params else "."), icon=None)
    go.button("Open it", key="_classroom.go", type="primary", on_click=_open, args=(link.page, link.params))
    close.button("Dismiss", key="_classroom.dismiss", on_click=dismissed.add, args=(link.id,))


# --------------------------------------------------------------------------------------------
# The instructor page's key
# --------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=4)
def key_guard(key_digest: str) -> classroom.KeyGuard:
    """One guard per server process and key (a new key starts a new count)."""
    return classroom.KeyGuard(classroom.instructor_key())


@st.cache_resource(show_spinner=False)
def cpu_meter() -> classroom.CpuMeter:
    return classroom.CpuMeter()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def guard() -> classroom.KeyGuard:
    return key_guard(_digest(classroom.instructor_key()))


def unlocked() -> bool:
    """This session entered the server's current key."""
    key = classroom.instructor_key()
    return bool(key) and st.session_state.get(_UNLOCKED) == _digest(key)


def try_key(entered: str, session: str) -> classroom.Attempt | None:
    """Check a newly entered key (a rerun with the same text is not a new try); None when nothing new
    was entered. A try refused because the field is locked is not remembered, so it is checked once
    the lock has passed."""
    if not entered:
        return None
    digest = _digest(entered)
    if st.session_state.get(_TRIED) == digest:
        wait = guard().wait_s(session)
        return classroom.Attempt(False, wait)
    attempt = guard().attempt(session, entered)
    if attempt.ok:
        st.session_state[_UNLOCKED] = _digest(classroom.instructor_key())
    elif attempt.checked:
        st.session_state[_TRIED] = digest
    return attempt


def lock() -> None:
    st.session_state.pop(_UNLOCKED, None)
    st.session_state.pop(_TRIED, None)
    st.session_state.pop("instructor.key", None)
