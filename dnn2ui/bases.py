"""Pretrained bases shared by every page and session (cats/dogs, Inside the network).

The ImageNet base of each architecture lives in its own cache, keyed by where its weights are,
so a learner's typed weights file (a second, one-entry cache) can never evict it.
"""

from __future__ import annotations

import streamlit as st

from dnn2core import pretrained, uploads
from dnn2ui import uploads_ui


@st.cache_resource(max_entries=2 * len(pretrained.BASES), show_spinner="Loading the pretrained base (once per server)…")
def _imagenet(arch: str, where: str):
    return pretrained.load_base(arch, "imagenet")


def imagenet_base(arch: str):
    """(frozen base, WeightsInfo) with ImageNet weights, or random ones with the reason; shared, read-only."""
    path, _, _ = pretrained.find_weights(arch)
    return _imagenet(arch, str(path) if path is not None else f"missing:{pretrained.keras_models_dir()}")


@st.cache_resource(max_entries=1, show_spinner="Loading your weights file…")
def _typed(arch: str, typed: str, resolved: str, mtime_ns: int, session_dir: str):
    return pretrained.load_base(arch, typed, roots=uploads.allowed_roots(session_dir or None))


def typed_base(arch: str, typed: str):
    """(frozen base, WeightsInfo) from a weights file the learner typed; UploadError when the path is
    not allowed or not found (the caller falls back to the ImageNet base)."""
    roots = uploads_ui.roots()
    path, _ = uploads.resolve_server_path(typed, roots, want="file")
    session = uploads_ui.session_folder(create=False)
    return _typed(arch, typed.strip(), str(path), path.stat().st_mtime_ns,
                  str(session.path) if session is not None else "")
