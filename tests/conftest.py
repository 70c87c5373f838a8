"""Shared fixtures. Tests never reach the internet: downloads are switched off unless a test
turns them back on, and the real datasets come from DNN2_DATA_DIR (../shared/data in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")  # AppTest resolves relative paths against the calling file
SHARED_DATA = Path(os.environ.get("DNN2_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("DNN2_OFFLINE", "1")
os.environ.setdefault("DNN2_APPTEST", "1")  # see dnn2ui/router.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def shared_data(*parts: str) -> Path:
    """Path inside ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs the real dataset at {p} (../shared/data is absent on this machine)")
    return p


@pytest.fixture
def no_local_data(tmp_path, monkeypatch):
    """No DNN2_DATA_DIR and an empty Keras cache: loaders must fall back to embedded data."""
    monkeypatch.setenv("DNN2_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("DNN2_OFFLINE", "1")
    return tmp_path


@pytest.fixture
def shared_data_dir(monkeypatch):
    d = SHARED_DATA
    if not d.exists():
        pytest.skip(f"needs ../shared/data at {d}")
    monkeypatch.setenv("DNN2_DATA_DIR", str(d))
    return d


def qp(at, key: str) -> str:
    """A query parameter of an AppTest as one string (AppTest stores lists before a run)."""
    value = at.query_params[key]
    return value[-1] if isinstance(value, list) else value


@pytest.fixture(autouse=True)
def fresh_run_store(tmp_path_factory, monkeypatch):
    """Every test gets its own run store (the dashboard's registry is keyed by its folder), so no
    test sees another's runs; reference runs still load from assets/reference/."""
    path = tmp_path_factory.mktemp("runs")
    monkeypatch.setenv("DNN2_RUNS_DIR", str(path))
    return path


def run_registry():
    """The dashboard's job registry for the current DNN2_RUNS_DIR (the one AppTests use)."""
    from dnn2core.runs import default_runs_dir
    from dnn2ui.live import _registry

    return _registry(str(default_runs_dir()))[0]


def own_runs(at, page: str | None = None) -> list[str]:
    """Run keys an AppTest session started (on one page)."""
    own = at.session_state["_runs.own"] if "_runs.own" in at.session_state else []
    return [k for p, k in own if page is None or p == page]


def open_page(path: str, *, timeout: int = 120, session: dict | None = None, **params):
    """An AppTest of one page through app.py's navigation: link settings as query parameters,
    optional session state, run once, and fail on an exception box."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in params.items():
        at.query_params[k] = v
    for k, v in (session or {}).items():
        at.session_state[k] = v
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at
