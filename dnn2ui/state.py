"""Settings that live in the URL, so an instructor can share a link that opens the same experiment.

Each page makes a ``UrlState("page")``; its widget helpers read the initial value from
``st.query_params`` (falling back to what this learner chose earlier, then the default),
keep it in ``st.session_state`` under a page-prefixed key, and ``sync()`` writes the current
values back to the URL. A value in the URL that does not parse or is out of range is
ignored with a visible note, never an exception; the note shows the value as inline code
(``as_code``), so a crafted link cannot render bold text, colours or clickable links.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import streamlit as st

from dnn2ui.router import ensure_navigation

_STORE = "_url_store"  # survives page switches, when Streamlit drops widget keys of hidden pages


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt(v) for v in value)
    return str(value)


def as_code(value: Any, limit: int = 80) -> str:
    """Untrusted text as one Markdown inline code span: nothing inside is rendered (no emphasis,
    links, autolinks or Streamlit colour directives). Truncated, on one line, backticks replaced."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[:limit] + "…"
    return "`" + (text.replace("`", "'") or " ") + "`"


def parse_bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


class UrlState:
    """URL-bound widgets for one page."""

    def __init__(self, page: str):
        ensure_navigation()  # every page makes a UrlState first: route deep links through app.py
        self.page = page
        self._bound: dict[str, str] = {}
        self.ignored: list[str] = []

    def key(self, name: str) -> str:
        return f"{self.page}.{name}"

    def init(self, name: str, default: Any, parse: Callable[[str], Any], valid: Callable[[Any], bool] = lambda v: True) -> str:
        """Seed the session-state value of ``name`` once; return its widget key."""
        key = self.key(name)
        self._bound[name] = key
        if key in st.session_state:
            return key
        store = st.session_state.setdefault(_STORE, {})
        value = store.get(key, default)
        raw = st.query_params.get(name)
        if raw is not None:
            try:
                parsed = parse(raw)
                if not valid(parsed):
                    raise ValueError(raw)
                value = parsed
            except (ValueError, TypeError):
                self.ignored.append(f"{name}={raw}")
        st.session_state[key] = value
        return key

    def get(self, name: str) -> Any:
        return st.session_state[self.key(name)]

    def set(self, name: str, value: Any) -> None:
        st.session_state[self.key(name)] = value

    # --- widget helpers --------------------------------------------------------------
    def selectbox(self, name: str, label: str, options: Sequence[Any], default: Any, where=st, **kw):
        parse = type(default) if not isinstance(default, str) else str
        key = self.init(name, default, parse, lambda v: v in options)
        return where.selectbox(label, options, key=key, **kw)

    def radio(self, name: str, label: str, options: Sequence[Any], default: Any, where=st, **kw):
        parse = type(default) if not isinstance(default, str) else str
        key = self.init(name, default, parse, lambda v: v in options)
        return where.radio(label, options, key=key, **kw)

    def select_slider(self, name: str, label: str, options: Sequence[Any], default: Any, where=st, **kw):
        key = self.init(name, default, type(default), lambda v: v in options)
        return where.select_slider(label, options, key=key, **kw)

    def slider(self, name: str, label: str, min_value, max_value, default, where=st, **kw):
        key = self.init(name, default, type(default), lambda v: min_value <= v <= max_value)
        return where.slider(label, min_value=min_value, max_value=max_value, key=key, **kw)

    def number(self, name: str, label: str, default, min_value=None, max_value=None, where=st, **kw):
        def ok(v):
            return (min_value is None or v >= min_value) and (max_value is None or v <= max_value) and v == v
        key = self.init(name, default, type(default), ok)
        return where.number_input(label, min_value=min_value, max_value=max_value, key=key, **kw)

    def toggle(self, name: str, label: str, default: bool, where=st, **kw):
        key = self.init(name, default, parse_bool)
        return where.toggle(label, key=key, **kw)

    def checkbox(self, name: str, label: str, default: bool, where=st, **kw):
        key = self.init(name, default, parse_bool)
        return where.checkbox(label, key=key, **kw)

    def multiselect(self, name: str, label: str, options: Sequence[str], default: Sequence[str], where=st, **kw):
        key = self.init(name, list(default), lambda raw: [s for s in raw.split(",") if s],
                        lambda v: all(x in options for x in v))
        return where.multiselect(label, options, key=key, **kw)

    def apply(self, settings: dict) -> None:
        """Put a stored run's settings back on the page's widgets (a button callback: it runs before
        the widgets are drawn). Names this page does not bind are ignored."""
        for name, value in settings.items():
            key = self._bound.get(name)
            if key is not None:
                st.session_state[key] = list(value) if isinstance(value, (list, tuple)) else value

    # --- URL ------------------------------------------------------------------------------
    def sync(self) -> None:
        """Write every bound value to the URL (and the learner's store); call at the end of the page."""
        store = st.session_state.setdefault(_STORE, {})
        for name, key in self._bound.items():
            if key not in st.session_state:
                continue
            value = st.session_state[key]
            store[key] = value
            text = _fmt(value)
            if st.query_params.get(name) != text:
                st.query_params[name] = text
        if self.ignored:
            st.caption("Ignored settings from the link that were not valid here: "
                       + ", ".join(as_code(x) for x in self.ignored))

    def share_note(self) -> None:
        from dnn2ui import present

        if present.active():  # on a projector the note only pushes the figures down
            return
        st.caption("🔗 This page's settings, seed included, are in the address bar: copy the link to share "
                   "this exact experiment with your class.")


def page_link(prefix: str, url_path: str) -> str:
    """This learner's current link of a page (``mnist?epochs=3&…``) from the settings they last used
    there, without visiting it: what the instructor pushes to the class."""
    from urllib.parse import urlencode

    stored = st.session_state.get(_STORE, {})
    params = [(key[len(prefix) + 1:], _fmt(value)) for key, value in stored.items() if key.startswith(prefix + ".")]
    return url_path + (f"?{urlencode(params)}" if params else "")
