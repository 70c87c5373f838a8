"""The sidebar every page shares: compute device (read lazily) and the data in use."""

from __future__ import annotations

import streamlit as st

from dnn2core import device
from dnn2core.data import Provenance

_SOURCES = "_data_sources"


def use_data(provenance: Provenance) -> None:
    """Record a dataset the current page shows, for the sidebar's 'Data in use' box."""
    st.session_state.setdefault(_SOURCES, {})[provenance.name] = provenance


def data_banner(provenance: Provenance) -> None:
    """Say on the page when the data is a sample or a stand-in, and how to get the real thing."""
    use_data(provenance)
    if provenance.stand_in:
        st.warning(f"**{provenance.name}** is a stand-in: {provenance.detail}. {provenance.how_to_get_full}")
    elif not provenance.complete:
        st.info(f"Using a **sample** of {provenance.name}: {provenance.detail}. {provenance.how_to_get_full}")


@st.cache_resource(show_spinner=False)
def _device_info() -> device.DeviceInfo:
    return device.configure_tensorflow()


def render_device() -> None:
    st.sidebar.markdown("**Compute device**")
    if device.tensorflow_loaded() or st.session_state.get("_want_device"):
        info = _device_info()
        st.sidebar.caption(f"TensorFlow {info.tensorflow_version} sees **{info.label}**")
    else:
        st.sidebar.caption("TensorFlow is not loaded yet: this page does not need it.")
        if st.sidebar.button("Detect device", key="_detect_device", help="Loads TensorFlow (a few seconds)."):
            st.session_state["_want_device"] = True
            st.rerun()


def render_sources(slot) -> None:
    """List the datasets the page recorded during this run (call after the page ran)."""
    sources: dict[str, Provenance] = st.session_state.get(_SOURCES, {})
    with slot:
        st.markdown("**Data in use**")
        if not sources:
            st.caption("None on this page.")
        for p in sources.values():
            st.caption(f"{p.badge}" + (f" · {p.detail}" if p.detail else ""))
    st.session_state[_SOURCES] = {}
