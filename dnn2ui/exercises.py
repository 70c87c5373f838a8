"""The "Try this" section at the end of every page (the exercises are data in dnn2core/exercises.py)."""

from __future__ import annotations

from typing import Any, Mapping

import streamlit as st

from dnn2core import exercises as ex
from dnn2ui.state import UrlState


def _apply(url: UrlState, settings: Mapping[str, Any], key: str) -> None:
    url.apply(dict(settings))
    st.session_state[key] = True  # remember which exercise was set up, to point at its run


def try_this(page: str, url: UrlState, run: Any = None) -> None:
    """2-4 exercises: predict first, set the page up with one click, then read why. ``run`` is the
    run the page shows (a RunView, or None): when its settings are an exercise's, the exercise
    says what that run shows."""
    items = ex.for_page(page)
    if not items:
        return
    st.divider()
    st.subheader("Try this")
    st.caption("Predict first, then try. Each *Set it up* button changes this page's settings; nothing trains "
               "until you press Start.")
    record = getattr(run, "record", None)
    finished = record is not None and record.finished
    for i, item in enumerate(items, start=1):
        base = f"{page}.try.{item.key}"
        with st.container(border=True):
            st.markdown(f"**{i}. {item.title}** · *outcome {item.outcome}: {ex.OUTCOMES[item.outcome]}*")
            st.markdown(item.question)
            guess = st.radio("Your prediction", item.choices, index=None, key=f"{base}.guess")
            if item.settings:
                st.button("Set it up", key=f"{base}.setup", on_click=_apply,
                          args=(url, item.settings, f"{base}.was_setup"))
            if guess is not None:
                right = item.choices.index(guess) == item.answer
                verdict = "✅ That is what the course expects." if right else (
                    f"🤔 The course expects: *{item.choices[item.answer]}*.")
                st.markdown(f"{verdict} {item.explain}")
            if item.check is not None and finished and ex.applies_to(item, record.settings):
                said = item.check(record.metrics)
                if said:
                    st.info(said)
            elif item.check is not None and st.session_state.get(f"{base}.was_setup"):
                st.caption("Set up: press Start above (or open the stored run of these settings) and come back "
                           "here for what your run shows.")
