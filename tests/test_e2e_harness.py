"""The browser harness cleans up after itself: a server's run store is removed when it stops."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from harness import Server  # noqa: E402


def test_server_removes_its_run_store_when_it_stops(tmp_path, monkeypatch):
    monkeypatch.delenv("DNN2_RUNS_DIR", raising=False)  # the harness makes its own, as in `make e2e`
    server = Server(log_path=tmp_path / "server.log")
    with server:
        runs_dir = Path(server.env["DNN2_RUNS_DIR"])
        assert runs_dir.is_dir() and runs_dir.name.startswith("dnn2-e2e-runs-")
    assert not runs_dir.exists()
