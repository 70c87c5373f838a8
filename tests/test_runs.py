"""The run store: keys, atomic writes, the interrupted state, eviction, repair, two processes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dnn2core import runs
from dnn2core.runs import RunSpec, RunStore, StoreError, data_fingerprint, run_key

OWNER = runs.new_owner()


def _progress(epochs: int = 2) -> dict:
    return {"job_id": "x", "state": "done", "models": {"Dense": {"name": "Dense", "state": "done", "epoch": epochs,
            "epochs": epochs, "history": {"loss": [1.0 / (i + 1) for i in range(epochs)]}}}}


def _finish(store: RunStore, key: str, **kw) -> runs.RunRecord:
    store.claim(key, "mnist", {"epochs": 2, "seed": 0}, owner=OWNER)
    return store.finish(key, OWNER, state="done", progress=_progress(), metrics={"Dense": {"loss": 0.5}}, **kw)


def test_key_is_canonical_and_depends_on_every_part():
    a = run_key("mnist", {"epochs": 5, "lr": 0.001, "models": ("Dense", "CNN")}, data="d1")
    assert a == run_key("mnist", {"models": ["Dense", "CNN"], "lr": 1e-3, "epochs": 5}, data="d1")
    assert a == run_key("mnist", {"epochs": np.int64(5), "lr": np.float32(0.001), "models": ["Dense", "CNN"]},
                        data="d1")
    others = {run_key("mnist", {"epochs": 6, "lr": 0.001, "models": ["Dense", "CNN"]}, data="d1"),
              run_key("mnist", {"epochs": 5, "lr": 0.001, "models": ["Dense", "CNN"]}, data="d2"),
              run_key("mnist", {"epochs": 5, "lr": 0.001, "models": ["Dense", "CNN"]}, data="d1", version=2),
              run_key("tricks", {"epochs": 5, "lr": 0.001, "models": ["Dense", "CNN"]}, data="d1"),
              run_key("mnist", {"epochs": 5, "lr": 0.001, "models": ["Dense", "CNN"]}, data="d1", secret="s")}
    assert a not in others and len(others) == 5
    with pytest.raises(ValueError):
        run_key("mnist", {"lr": float("nan")})


def test_data_fingerprint_is_content_not_path():
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert data_fingerprint(x) == data_fingerprint(x.copy())
    assert data_fingerprint(x) != data_fingerprint(x.T.copy())
    y = x.copy()
    y[0, 0] = 99
    assert data_fingerprint(x) != data_fingerprint(y)


def test_claim_finish_and_read_back(tmp_path):
    store = RunStore(tmp_path)
    spec = RunSpec("mnist", {"epochs": 2, "seed": 0})
    rec, created = store.claim(spec.key, "mnist", spec.settings, owner=OWNER, label="Dense")
    assert created and rec.state == "queued" and rec.settings == {"epochs": 2, "seed": 0}
    again, created2 = store.claim(spec.key, "mnist", spec.settings, owner=runs.new_owner())
    assert not created2 and again.key == rec.key
    store.beat(spec.key, OWNER, {"state": "running"}, state="running", device="CPU")
    assert store.get(spec.key).state == "running" and store.get(spec.key).device == "CPU"
    done = store.finish(spec.key, OWNER, state="done", progress=_progress(), metrics={"Dense": {"val_accuracy": 0.9}},
                        artifacts={"Dense/probs": np.eye(3, dtype=np.float32)}, device="CPU")
    assert done.state == "done" and done.metrics == {"Dense": {"val_accuracy": 0.9}}
    assert (Path(done.path) / "run.json").exists() and done.bytes > 0
    assert np.array_equal(store.artifacts(spec.key)["Dense/probs"], np.eye(3))
    # a second store object on the same folder (another process) sees the same run
    other = RunStore(tmp_path)
    assert [r.key for r in other.runs("mnist")] == [spec.key]
    assert other.runs("housing") == []
    # a finished run is not retrained by a plain claim, only with replace=True
    rec3, created3 = store.claim(spec.key, "mnist", spec.settings, owner=OWNER)
    assert not created3 and rec3.state == "done"
    rec4, created4 = store.claim(spec.key, "mnist", spec.settings, owner=OWNER, replace=True)
    assert created4 and rec4.state == "queued" and not Path(done.path).exists()


def test_finish_is_atomic_when_saving_fails(tmp_path):
    store = RunStore(tmp_path)
    key = run_key("mnist", {"seed": 1})
    store.claim(key, "mnist", {"seed": 1}, owner=OWNER)

    class Broken:
        def save(self, path):
            Path(path).write_bytes(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError):
        store.finish(key, OWNER, state="done", progress=_progress(), metrics={}, models={"Dense": Broken()})
    assert store.get(key).state == "queued"  # never "done" without its folder
    assert not (tmp_path / "runs" / key).exists()
    assert not [p for p in (tmp_path / "runs").iterdir()]  # the temporary folder is gone too


def test_a_run_whose_process_died_reads_interrupted(tmp_path):
    store = RunStore(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead_owner = f"{runs._HOST}:{proc.pid}:abcd"
    key = run_key("sequences", {"epochs": 500})
    store.claim(key, "sequences", {"epochs": 500}, owner=dead_owner)
    rec = store.get(key)
    assert rec.state == "interrupted" and "ended before the run finished" in rec.message
    # a stale beat from a live-looking owner on another host is interrupted too
    key2 = run_key("sequences", {"epochs": 501})
    store.claim(key2, "sequences", {"epochs": 501}, owner="elsewhere:1:x")
    con = store._connect()
    con.execute("UPDATE runs SET beat_at=? WHERE key=?", (time.time() - runs.STALE_AFTER_S - 5, key2))
    con.close()
    assert store.get(key2).state == "interrupted"
    # and an interrupted run may be trained again
    _, created = store.claim(key, "sequences", {"epochs": 500}, owner=OWNER)
    assert created


def test_eviction_removes_oldest_non_reference_runs(tmp_path):
    store = RunStore(tmp_path, max_bytes=10**9)
    keys = []
    for i in range(4):
        key = run_key("mnist", {"seed": i})
        store.claim(key, "mnist", {"seed": i}, owner=OWNER)
        store.finish(key, OWNER, state="done", progress=_progress(), metrics={},
                     artifacts={"a": np.random.default_rng(i).random(20_000)})
        keys.append(key)
        time.sleep(0.01)
    one = store.get(keys[0]).bytes
    store.max_bytes = int(one * 2.5)
    removed = store.evict()
    assert removed == keys[:2]
    assert [r.key for r in store.runs()] == keys[:1:-1]
    assert store.total_bytes() <= store.max_bytes


def test_reference_runs_are_read_only_and_never_evicted(tmp_path):
    ref_root = tmp_path / "assets"
    src = RunStore(tmp_path / "build")
    key = run_key("mnist", {"seed": 7})
    src.claim(key, "mnist", {"seed": 7}, owner=OWNER)
    rec = src.finish(key, OWNER, state="done", progress=_progress(5), metrics={"Dense": {"val_accuracy": 0.97}},
                     provenance={"device": "CPU"})
    ref_root.mkdir()
    os.replace(rec.path, ref_root / key)
    store = RunStore(tmp_path / "store", max_bytes=1, reference_dir=ref_root)
    got = store.get(key)
    assert got.reference and got.state == "done" and got.provenance == {"device": "CPU"}
    assert store.evict() == [] and store.delete(key) is False
    _, created = store.claim(key, "mnist", {"seed": 7}, owner=OWNER, replace=True)
    assert not created
    assert (ref_root / key / "run.json").exists()


def test_damaged_index_is_rebuilt_from_run_folders(tmp_path):
    store = RunStore(tmp_path)
    key = run_key("housing", {"epochs": 500})
    store.claim(key, "housing", {"epochs": 500}, owner=OWNER)
    store.finish(key, OWNER, state="done", progress=_progress(), metrics={"Network": {"val_mae": 20000.0}})
    (tmp_path / "runs" / ".half.tmp").mkdir()  # a crashed process's half-written folder
    for suffix in ("-wal", "-shm"):
        Path(str(store.db_path) + suffix).unlink(missing_ok=True)
    store.db_path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)  # truncated
    repaired = RunStore(tmp_path)
    assert repaired.notes and "rebuilt" in repaired.notes[0]
    assert repaired.get(key).metrics == {"Network": {"val_mae": 20000.0}}
    assert not (tmp_path / "runs" / ".half.tmp").exists()


def test_deleted_run_folder_is_forgotten_not_fatal(tmp_path):
    store = RunStore(tmp_path)
    key = run_key("mnist", {"seed": 3})
    rec = _finish(store, key)
    import shutil

    shutil.rmtree(rec.path)
    assert store.get(key) is None
    assert any("folder is gone" in n for n in store.notes)


def test_unwritable_store_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="DNN2_RUNS_DIR"):
        RunStore(blocker / "runs")


def _claim_in_process(args):
    path, key = args
    store = RunStore(path)
    _, created = store.claim(key, "mnist", {"seed": 0}, owner=runs.new_owner())
    return created


def test_two_processes_claim_one_key_once(tmp_path):
    RunStore(tmp_path)
    key = run_key("mnist", {"seed": 0})
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        created = pool.map(_claim_in_process, [(str(tmp_path), key)] * 12)
    assert sum(created) == 1


def test_watchers_and_stop_requests(tmp_path):
    store = RunStore(tmp_path)
    key = run_key("mnist", {"seed": 9})
    store.claim(key, "mnist", {"seed": 9}, owner=OWNER)
    assert store.watchers(key) == 0 and store.last_watched(key) is None
    store.watch(key, "s1")
    store.watch(key, "s2")
    store.watch(key, "s1")
    assert store.watchers(key) == 2 and store.last_watched(key) > time.time() - 5
    assert not store.stop_requested(key)
    store.request_stop(key)
    assert store.stop_requested(key)


def test_a_sessions_watch_is_written_at_most_every_few_seconds_but_at_once_for_a_new_run(tmp_path):
    store = RunStore(tmp_path)
    key = run_key("mnist", {"seed": 10})
    store.claim(key, "mnist", {"seed": 10}, owner=OWNER)
    store.watch(key, "s1")
    first = store.last_watched(key)
    time.sleep(0.05)
    store.watch(key, "s1")  # a rerun a moment later: no write (each rerun of a waiting page calls it)
    assert store.last_watched(key) == first
    store.watch(key, "s2")  # another learner is written at once
    assert store.watchers(key) == 2
    store.fail(key, OWNER, state="failed", message="x")
    store.claim(key, "mnist", {"seed": 10}, owner=OWNER)  # retrained: the old watchers are cleared...
    assert store.watchers(key) == 0
    store.watch(key, "s1")  # ... and the same session's next watch is written at once
    assert store.watchers(key) == 1


def test_run_json_is_the_record(tmp_path):
    store = RunStore(tmp_path)
    key = run_key("mnist", {"seed": 4})
    rec = _finish(store, key)
    meta = json.loads((Path(rec.path) / "run.json").read_text())
    assert meta["key"] == key and meta["state"] == "done" and meta["settings"] == {"epochs": 2, "seed": 0}
