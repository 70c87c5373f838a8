"""Pretrained bases for the pages (cats/dogs, Inside the network).

Which weights: decided here without building anything (``pretrained.choose_weights``); the ImageNet
choice of each architecture is remembered per server, keyed by where its weights are. The base
itself is built only where it is used: by the worker that trains a run, and in this process only
for a page that runs it (a learner's photo, Inside the network), once (``pretrained.cached_base``).
"""

from __future__ import annotations

import streamlit as st

from dnn2core import pretrained, uploads
from dnn2ui import uploads_ui


@st.cache_resource(max_entries=2 * len(pretrained.BASES), show_spinner="Looking for the pretrained weights…")
def _imagenet(arch: str, where: str) -> pretrained.WeightsChoice:
    return pretrained.choose_weights(arch, "imagenet")  # downloads once when missing and allowed


def imagenet_choice(arch: str) -> pretrained.WeightsChoice:
    """The ImageNet weights of ``arch`` on this server, or random ones with the reason."""
    path, _, _ = pretrained.find_weights(arch)
    return _imagenet(arch, str(path) if path is not None else f"missing:{pretrained.keras_models_dir()}")


def typed_choice(arch: str, typed: str) -> pretrained.WeightsChoice:
    """The weights file a learner typed; UploadError when the path is not allowed or not found (the
    caller falls back to the ImageNet choice)."""
    roots = uploads_ui.roots()
    uploads.resolve_server_path(typed, roots, want="file")
    return pretrained.choose_weights(arch, typed.strip(), roots=roots)


def base(choice: pretrained.WeightsChoice):
    """(frozen base, WeightsInfo), built once in this process and shared read-only."""
    with st.spinner(f"Loading {choice.info.label} (once per server)…"):
        return pretrained.cached_base(choice)


def imagenet_base(arch: str):
    """(frozen base, WeightsInfo) with ImageNet weights, or random ones with the reason; shared, read-only."""
    return base(imagenet_choice(arch))
