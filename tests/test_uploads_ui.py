"""A session's upload folder is removed when the session's state lets go of it."""

from __future__ import annotations

import gc

from dnn2ui.uploads_ui import SessionFolder


def test_session_folder_is_removed_when_dropped(tmp_path):
    folder = SessionFolder(parent=tmp_path)
    path = folder.path
    (path / "zip-1").mkdir()
    (path / "zip-1" / "cat.0.jpg").write_bytes(b"x")
    assert path.name.startswith("dnn2-session-") and path.parent == tmp_path
    folder.clear()
    assert path.is_dir() and list(path.iterdir()) == []
    (path / "left.jpg").write_bytes(b"x")
    del folder
    gc.collect()
    assert not path.exists()


def test_remove_is_idempotent(tmp_path):
    folder = SessionFolder(parent=tmp_path)
    folder.remove()
    folder.remove()
    assert not folder.path.exists()
