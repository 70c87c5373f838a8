"""A 'coming soon' page for experiments whose issue has not landed yet."""

import streamlit as st

from dnn2ui.pages import PAGES
from dnn2ui.router import ensure_navigation


def coming_soon(path: str, issue: int) -> None:
    ensure_navigation()
    info = next(p for p in PAGES if p.path == path)
    st.title(info.title)
    st.info(f"Coming soon (issue #{issue}): {info.blurb}")
