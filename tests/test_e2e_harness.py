"""The browser harness cleans up after itself: a server's run store is removed when it stops."""

from __future__ import annotations

import sys

import pytest
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


def test_run_stores_of_killed_harness_processes_are_swept(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import tempfile

    from harness import RUNS_PREFIX, sweep_stale_run_dirs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f"{RUNS_PREFIX}{dead}-abc"
    legacy = tmp_path / f"{RUNS_PREFIX}028w1zpr"  # a name from before the pid was in it
    live = tmp_path / f"{RUNS_PREFIX}{os.getpid()}-def"
    for d in (stale, legacy, live):
        d.mkdir()
    assert sorted(sweep_stale_run_dirs()) == sorted([stale, legacy])
    assert live.exists() and not stale.exists() and not legacy.exists()


def test_store_rows_reads_a_run_store_index_read_only(tmp_path):
    import sqlite3

    from harness import store_rows

    con = sqlite3.connect(tmp_path / "index.db")
    con.execute("CREATE TABLE runs (key TEXT, state TEXT)")
    con.executemany("INSERT INTO runs VALUES (?, ?)", [("a", "done"), ("b", "running")])
    con.commit()
    con.close()
    assert store_rows(tmp_path, "SELECT key FROM runs WHERE state=?", ("running",)) == [("b",)]
    with pytest.raises(sqlite3.OperationalError):  # the server writes; a check only looks
        store_rows(tmp_path, "DELETE FROM runs")
