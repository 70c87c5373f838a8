"""Per-session upload folders: the Streamlit half of dnn2core.uploads' disk rules.

Streamlit has no session-end hook, so each session's folder belongs to a ``SessionFolder``
object kept in its session state: when Streamlit drops the session (the tab closed and the
disconnected-session grace period passed), the object is collected and its finalizer removes
the folder. Folders that outlive their server (a crash, a CI run) are swept at the next start.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import streamlit as st

from dnn2core import uploads

_KEY = "_dnn2_session_folder"


class SessionFolder:
    """A temporary folder owned by one session; removed when this object is collected (or at exit)."""

    def __init__(self, parent: str | Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=uploads.SESSION_PREFIX + "session-", dir=parent))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def remove(self) -> None:
        """Remove the folder now (idempotent)."""
        self._finalizer()

    def clear(self) -> None:
        """Empty the folder but keep it: a session holds one uploaded set at a time."""
        for child in list(self.path.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def session_folder(create: bool = True) -> SessionFolder | None:
    """This session's folder (made on first use), or None when it has none and create is False."""
    folder = st.session_state.get(_KEY)
    if folder is not None and folder.path.is_dir():
        return folder
    if not create:
        return None
    folder = SessionFolder()
    st.session_state[_KEY] = folder
    return folder


def roots() -> list[uploads.Root]:
    """Where this session's typed paths may point: the data folder, the Keras cache, its own uploads."""
    folder = session_folder(create=False)
    return uploads.allowed_roots(folder.path if folder is not None else None)


@st.cache_resource(show_spinner=False)
def sweep_stale_once() -> int:
    """Remove stale dnn2-* folders of earlier servers, once per process; how many were removed."""
    return len(uploads.sweep_stale())
