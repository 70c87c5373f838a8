"""The run store: finished and live training runs, on disk, shared by every session and process.

Why: a class trains each experiment once. A run is data keyed by its experiment's settings, not
an object in one learner's session, so a refresh, a shared link, a second learner or a second
server process all find the same run; the course's full-length reference runs ship with the app
and are loaded into every store read-only.

Layout under ``DNN2_RUNS_DIR`` (default ``~/.dnn2/runs``):

- ``index.db``: SQLite in WAL mode (one row per run, plus who is watching it). Every change is one
  transaction, so two processes can share the store.
- ``runs/<key>/``: a finished run's folder: ``run.json`` (the record), ``progress.json`` (what
  the live view drew: state, per-model history, results), ``artifacts.npz`` (arrays the
  evaluation tabs need) and ``<model>.keras``. A folder is written under a temporary name and
  renamed into place, so a crash never leaves half a run; the index row says ``done`` only after.

A run whose training process died reads as ``interrupted``, never ``done``: the process that
trains a run writes a beat at least every few seconds, and a live row whose beat is stale (or whose
process is gone, on this host) is marked interrupted when read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from dnn2core.env import env_number, env_text

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "EXPERIMENTS",
    "LIVE_STATES",
    "RUN_STATES",
    "RunRecord",
    "RunSpec",
    "RunStore",
    "StoreError",
    "data_fingerprint",
    "default_runs_dir",
    "new_owner",
    "run_key",
]

EXPERIMENTS = ("mnist", "cats_dogs", "inside", "sequences", "housing", "tricks")
RUN_STATES = ("queued", "running", "done", "stopped", "failed", "interrupted")
LIVE_STATES = frozenset({"queued", "running"})
FINISHED_STATES = frozenset({"done", "stopped", "failed", "interrupted"})

STALE_AFTER_S = 30.0  # a live run without a beat for this long has lost its process
WATCH_WINDOW_S = 15.0  # a session that looked at a run this recently counts as watching it
WATCH_WRITE_S = 4.0  # a session's watch is written at most this often (well inside the window)
_SCHEMA = 1
_HOST = socket.gethostname()


class StoreError(RuntimeError):
    """The store cannot be used (unwritable folder, damaged beyond repair): the message says why."""


def default_runs_dir() -> Path:
    return Path(env_text("DNN2_RUNS_DIR", "~/.dnn2/runs")).expanduser()


def _canonical(value: Any) -> Any:
    """Settings in one canonical form: floats that are whole stay floats, tuples become lists."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"A run setting must be finite, got {value!r}.")
        return float(f"{value:.7g}")  # float32 round trips (0.001 stays 0.001)
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    raise TypeError(f"A run setting must be plain data, got {type(value).__name__}.")


def run_key(experiment: str, settings: Mapping[str, Any], *, data: str = "", version: int = 1,
            secret: str = "") -> str:
    """The run's identity: experiment, every result-changing setting, the data and a version.

    ``secret`` is set for runs on a learner's uploaded data: only the uploader's link carries it,
    so nobody else can compute (or find) the key.
    """
    payload = json.dumps({"experiment": experiment, "settings": _canonical(dict(settings)), "data": data,
                          "version": int(version), "secret": secret}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def data_fingerprint(*parts: Any) -> str:
    """A short content hash of a dataset (arrays, frames, bytes or strings), independent of its path,
    so a run trained on the same digits elsewhere (the reference runs) matches here."""
    h = hashlib.sha256()
    for part in parts:
        if hasattr(part, "to_numpy") and hasattr(part, "columns"):  # a DataFrame: columns and values
            h.update(json.dumps([str(c) for c in part.columns]).encode())
            import pandas as pd

            h.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        elif isinstance(part, np.ndarray) or hasattr(part, "__array__"):
            arr = np.ascontiguousarray(np.asarray(part))
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(memoryview(arr).cast("B"))
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(str(part).encode())
        h.update(b"|")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class RunRecord:
    """One run as the store knows it. ``progress`` is the live view's plain data (a dict)."""

    key: str
    experiment: str
    settings: dict
    state: str
    metrics: dict = field(default_factory=dict)
    reference: bool = False
    private: bool = False
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    device: str = ""
    label: str = ""
    message: str | None = None
    data: str = ""
    version: int = 1
    progress: dict = field(default_factory=dict)
    path: str | None = None
    bytes: int = 0
    owner: str = ""
    provenance: dict = field(default_factory=dict)  # reference runs: device, date, data, versions
    extra: dict = field(default_factory=dict)  # what the page's result tabs need besides history (plain data)

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def model_names(self) -> list[str]:
        if not self.path:
            return []
        return sorted(p.stem for p in Path(self.path).glob("*.keras"))


def _owner_alive(owner: str) -> bool:
    """False only when we know the owning process is gone (same host, pid not running)."""
    try:
        host, pid, _ = owner.split(":", 2)
        pid_n = int(pid)
    except ValueError:
        return True
    if host != _HOST:
        return True
    if pid_n == os.getpid():
        return True
    try:
        os.kill(pid_n, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _folder_bytes(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def _write_json_atomic(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(_dumps(value))
    os.replace(tmp, path)


class _ModelCache:
    """A bounded, process-wide LRU of loaded Keras models (models are big; runs are many)."""

    def __init__(self, max_items: int = 6) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, load) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


MODEL_CACHE = _ModelCache(int(env_number("DNN2_MODEL_CACHE", 6, whole=True, minimum=1)))
_ARTIFACT_CACHE = _ModelCache(16)


class RunStore:
    """The persistent store of runs. Cheap to construct; every method opens its own connection,
    so one instance can be shared by threads, and several processes can share the folder."""

    def __init__(self, path: str | Path | None = None, *, max_bytes: int | None = None,
                 reference_dir: str | Path | None = None) -> None:
        self.root = Path(path).expanduser() if path is not None else default_runs_dir()
        if max_bytes is None:
            max_bytes = int(env_number("DNN2_RUNS_MAX_GB", 5.0, above=0) * 1024**3)
        self.max_bytes = int(max_bytes)
        self.reference_dir = Path(reference_dir) if reference_dir is not None else None
        self.notes: list[str] = []  # what the store repaired on opening, in words for the page
        self._watch_written: dict[tuple[str, str], float] = {}
        self._watch_lock = threading.Lock()
        try:
            (self.root / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"The run store folder cannot be created ({exc.strerror}). "
                             "Set DNN2_RUNS_DIR to a writable folder.") from None
        self.db_path = self.root / "index.db"
        self._init_db()
        if self.reference_dir is not None:
            self.load_references(self.reference_dir)

    # ---- database plumbing ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA busy_timeout=30000")
        # Per connection: in WAL mode NORMAL syncs at checkpoints, not on every commit. A crash can
        # lose the last beat or watch, never corrupt the index; FULL cost the web process an fsync
        # per keep-alive write (profiled: ~9% of its samples while a class waited).
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def _init_db(self) -> None:
        try:
            self._create_schema()
        except sqlite3.DatabaseError as exc:
            # A truncated or overwritten index: keep the damaged file for inspection, start a new
            # index and re-read the finished runs from their folders (each holds its run.json).
            stamp = time.strftime("%Y%m%d-%H%M%S")
            damaged = self.db_path.with_name(f"index.db.damaged-{stamp}")
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(self.db_path) + suffix)
                if p.exists():
                    os.replace(p, Path(str(damaged) + suffix))
            self._create_schema()
            n = self.reindex()
            self.notes.append(f"The run index was damaged ({exc}); it was rebuilt from {n} run folder(s).")

    def _create_schema(self) -> None:
        con = self._connect()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("""CREATE TABLE IF NOT EXISTS runs (
                key TEXT PRIMARY KEY, experiment TEXT NOT NULL, settings TEXT NOT NULL, data TEXT NOT NULL,
                version INTEGER NOT NULL, private INTEGER NOT NULL DEFAULT 0, reference INTEGER NOT NULL DEFAULT 0,
                state TEXT NOT NULL, label TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL, started_at REAL, finished_at REAL, owner TEXT NOT NULL DEFAULT '',
                beat_at REAL, progress TEXT NOT NULL DEFAULT '{}', metrics TEXT NOT NULL DEFAULT '{}',
                message TEXT, path TEXT, bytes INTEGER NOT NULL DEFAULT 0, stop_requested INTEGER NOT NULL DEFAULT 0,
                provenance TEXT NOT NULL DEFAULT '{}')""")
            columns = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
            if "extra" not in columns:  # stores made before the column existed
                con.execute("ALTER TABLE runs ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'")
            con.execute("CREATE INDEX IF NOT EXISTS runs_experiment ON runs(experiment, state)")
            con.execute("""CREATE TABLE IF NOT EXISTS watchers (
                key TEXT NOT NULL, session TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (key, session))""")
            con.execute(f"PRAGMA user_version={_SCHEMA}")
            con.execute("SELECT count(*) FROM runs").fetchone()
        finally:
            con.close()

    def _record(self, row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            key=row["key"], experiment=row["experiment"], settings=json.loads(row["settings"]),
            state=row["state"], metrics=json.loads(row["metrics"] or "{}"), reference=bool(row["reference"]),
            private=bool(row["private"]), created_at=row["created_at"], started_at=row["started_at"],
            finished_at=row["finished_at"], device=row["device"], label=row["label"], message=row["message"],
            data=row["data"], version=row["version"], progress=json.loads(row["progress"] or "{}"),
            path=row["path"], bytes=row["bytes"], owner=row["owner"],
            provenance=json.loads(row["provenance"] or "{}"), extra=json.loads(row["extra"] or "{}"))

    def _check_live(self, con: sqlite3.Connection, row: sqlite3.Row) -> sqlite3.Row:
        """A live row whose process is gone becomes interrupted (written back once)."""
        if row["state"] not in LIVE_STATES:
            return row
        stale = row["beat_at"] is None or time.time() - row["beat_at"] > STALE_AFTER_S
        if not stale and _owner_alive(row["owner"]):
            return row
        con.execute("UPDATE runs SET state='interrupted', finished_at=?, message=? WHERE key=? AND state IN "
                    "('queued','running')", (time.time(), "Its training process ended before the run finished "
                                             "(a server restart or a crash). Press Start to train it again.",
                                             row["key"]))
        return con.execute("SELECT * FROM runs WHERE key=?", (row["key"],)).fetchone()

    def _rows(self, sql: str, args: tuple = ()) -> list[RunRecord]:
        con = self._connect()
        try:
            rows = con.execute(sql, args).fetchall()
            out = []
            for row in rows:
                row = self._check_live(con, row)
                if row["state"] in FINISHED_STATES and row["path"] and not Path(row["path"]).is_dir():
                    # Its folder was deleted by hand: the index forgets the run rather than break a page.
                    con.execute("DELETE FROM runs WHERE key=? AND reference=0", (row["key"],))
                    self.notes.append(f"Run {row['key'][:8]} was removed: its folder is gone.")
                    continue
                out.append(self._record(row))
            return out
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"The run store could not be read ({exc}).") from None
        finally:
            con.close()

    # ---- reading ----------------------------------------------------------------------------

    def get(self, key: str) -> RunRecord | None:
        rows = self._rows("SELECT * FROM runs WHERE key=?", (key,))
        return rows[0] if rows else None

    def runs(self, experiment: str | None = None, *, include_private: bool = True, include_reference: bool = True,
             states: Iterable[str] | None = None) -> list[RunRecord]:
        """Runs, newest first; optionally one experiment's, without private or reference ones, in some states."""
        sql, args = "SELECT * FROM runs WHERE 1=1", []
        if not include_reference:
            sql += " AND reference=0"
        if experiment is not None:
            sql += " AND experiment=?"
            args.append(experiment)
        if not include_private:
            sql += " AND private=0"
        sql += " ORDER BY created_at DESC"
        rows = self._rows(sql, tuple(args))
        if states is not None:
            wanted = set(states)
            rows = [r for r in rows if r.state in wanted]
        return rows

    def progress(self, key: str) -> dict:
        rec = self.get(key)
        return rec.progress if rec else {}

    def artifacts(self, key: str) -> dict[str, np.ndarray]:
        """The arrays a finished run stored for its evaluation tabs (loaded once, LRU-bounded)."""
        rec = self.get(key)
        if rec is None or not rec.path:
            return {}
        path = Path(rec.path) / "artifacts.npz"
        if not path.exists():
            return {}

        def load() -> dict[str, np.ndarray]:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}

        return _ARTIFACT_CACHE.get((str(path), path.stat().st_mtime), load)

    def load_model(self, key: str, name: str) -> "keras.Model":
        """A trained model of a finished run, through the bounded LRU. Loaded with safe_mode: a
        model file never runs code."""
        rec = self.get(key)
        if rec is None or not rec.path:
            raise KeyError(f"Run {key} has no stored models.")
        path = Path(rec.path) / f"{_safe_name(name)}.keras"
        if not path.exists():
            raise KeyError(f"Run {key} has no model named {name!r}.")

        def load():
            import keras

            return keras.saving.load_model(path, compile=True, safe_mode=True)

        return MODEL_CACHE.get((str(path), path.stat().st_mtime), load)

    def watchers(self, key: str, within: float = WATCH_WINDOW_S) -> int:
        con = self._connect()
        try:
            return int(con.execute("SELECT count(*) FROM watchers WHERE key=? AND at>?",
                                   (key, time.time() - within)).fetchone()[0])
        finally:
            con.close()

    def last_watched(self, key: str) -> float | None:
        con = self._connect()
        try:
            value = con.execute("SELECT max(at) FROM watchers WHERE key=?", (key,)).fetchone()[0]
            return float(value) if value is not None else None
        finally:
            con.close()

    def stop_requested(self, key: str) -> bool:
        con = self._connect()
        try:
            row = con.execute("SELECT stop_requested FROM runs WHERE key=?", (key,)).fetchone()
            return bool(row and row[0])
        finally:
            con.close()

    def total_bytes(self) -> int:
        con = self._connect()
        try:
            return int(con.execute("SELECT coalesce(sum(bytes),0) FROM runs WHERE reference=0").fetchone()[0])
        finally:
            con.close()

    # ---- writing ----------------------------------------------------------------------------

    def claim(self, key: str, experiment: str, settings: Mapping[str, Any], *, owner: str, data: str = "",
              version: int = 1, private: bool = False, label: str = "", replace: bool = False) -> tuple[RunRecord, bool]:
        """Register a new queued run under ``key`` unless one is live or stored already.

        Returns (record, created). One transaction (BEGIN IMMEDIATE): when thirty learners press
        Start on the same settings, exactly one claim creates the run and the others attach to it.
        ``replace`` retrains a finished run's settings (never a reference run, never a live one).
        """
        settings = _canonical(dict(settings))
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()
            if row is not None:
                row = self._check_live(con, row)
            old_path = None
            if row is not None:
                keep = row["state"] in LIVE_STATES or row["reference"] or (
                    not replace and row["state"] in ("done", "stopped"))
                if keep:
                    con.execute("COMMIT")
                    return self._record(row), False
                old_path = row["path"]
                con.execute("DELETE FROM runs WHERE key=?", (key,))
            now = time.time()
            con.execute("INSERT INTO runs (key, experiment, settings, data, version, private, state, label, created_at,"
                        " owner, beat_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (key, experiment, _dumps(settings), data, int(version), int(private), "queued", label, now,
                         owner, now))
            con.execute("DELETE FROM watchers WHERE key=?", (key,))
            con.execute("COMMIT")
            with self._watch_lock:  # the new run's first watch must be written at once
                for pair in [p for p in self._watch_written if p[0] == key]:
                    del self._watch_written[pair]
            new = con.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            try:
                con.execute("ROLLBACK")
            except sqlite3.DatabaseError:
                pass
            raise StoreError(f"The run store could not record the run ({exc}).") from None
        finally:
            con.close()
        if old_path and Path(old_path).is_dir() and self._inside(Path(old_path)):
            shutil.rmtree(old_path, ignore_errors=True)
        return self._record(new), True

    def beat(self, key: str, owner: str, progress: Mapping[str, Any] | None = None, *, state: str | None = None,
             device: str | None = None, started_at: float | None = None) -> None:
        """The owner's periodic write: proof of life, and the live view's progress for other processes."""
        sets, args = ["beat_at=?"], [time.time()]
        if progress is not None:
            sets.append("progress=?")
            args.append(_dumps(progress))
        if state is not None:
            sets.append("state=?")
            args.append(state)
        if device is not None:
            sets.append("device=?")
            args.append(device)
        if started_at is not None:
            sets.append("started_at=?")
            args.append(started_at)
        con = self._connect()
        try:
            con.execute(f"UPDATE runs SET {', '.join(sets)} WHERE key=? AND owner=? AND state IN ('queued','running')",
                        (*args, key, owner))
        finally:
            con.close()

    def watch(self, key: str, session: str) -> None:
        """A session looked at the run (any page of it): keeps a live run from being abandoned.

        Written at most once per WATCH_WRITE_S per (run, session) from this process: every rerun
        of a waiting learner's page calls it, and the window is WATCH_WINDOW_S wide anyway."""
        now = time.monotonic()
        with self._watch_lock:
            last = self._watch_written.get((key, session))
            if last is not None and now - last < WATCH_WRITE_S:
                return
            if len(self._watch_written) > 4096:
                self._watch_written.clear()
            self._watch_written[(key, session)] = now
        con = self._connect()
        try:
            now = time.time()
            con.execute("INSERT INTO watchers (key, session, at) VALUES (?,?,?) "
                        "ON CONFLICT(key, session) DO UPDATE SET at=excluded.at", (key, session, now))
            if int(now) % 60 == 0:
                con.execute("DELETE FROM watchers WHERE at<?", (now - 3600,))
        finally:
            con.close()

    def set_extra(self, key: str, extra: Mapping[str, Any]) -> None:
        """Plain data a run's result tabs need (e.g. which approach each model is), kept with the run."""
        con = self._connect()
        try:
            con.execute("UPDATE runs SET extra=? WHERE key=?", (_dumps(dict(extra)), key))
        finally:
            con.close()

    def request_stop(self, key: str) -> None:
        con = self._connect()
        try:
            con.execute("UPDATE runs SET stop_requested=1 WHERE key=?", (key,))
        finally:
            con.close()

    def finish(self, key: str, owner: str, *, state: str, progress: Mapping[str, Any], metrics: Mapping[str, Any],
               models: Mapping[str, "keras.Model"] | None = None, artifacts: Mapping[str, np.ndarray] | None = None,
               message: str | None = None, device: str = "", provenance: Mapping[str, Any] | None = None) -> RunRecord:
        """Write the finished run's folder atomically, then mark it finished in the index."""
        if state not in FINISHED_STATES:
            raise ValueError(f"finish() needs a finished state, got {state!r}.")
        rec = self.get(key)
        if rec is None:
            raise KeyError(f"No run {key} to finish.")
        final = self.root / "runs" / key
        tmp = self.root / "runs" / f".{key}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir(parents=True)
        try:
            meta = {"key": key, "experiment": rec.experiment, "settings": rec.settings, "data": rec.data,
                    "version": rec.version, "private": rec.private, "state": state, "label": rec.label,
                    "device": device, "created_at": rec.created_at, "started_at": rec.started_at,
                    "finished_at": time.time(), "metrics": dict(metrics), "message": message,
                    "provenance": dict(provenance or {}), "extra": rec.extra}
            _write_json_atomic(tmp / "progress.json", dict(progress))
            for name, model in (models or {}).items():
                model.save(tmp / f"{_safe_name(name)}.keras")
            if artifacts:
                np.savez_compressed(tmp / "artifacts.npz", **{k: np.asarray(v) for k, v in artifacts.items()})
            _write_json_atomic(tmp / "run.json", meta)  # last: a folder with run.json is complete
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        size = _folder_bytes(final)
        con = self._connect()
        try:
            con.execute("UPDATE runs SET state=?, progress=?, metrics=?, message=?, device=?, finished_at=?, path=?,"
                        " bytes=?, provenance=? WHERE key=?",
                        (state, _dumps(dict(progress)), _dumps(dict(metrics)), message, device, meta["finished_at"],
                         str(final), size, _dumps(meta["provenance"]), key))
        finally:
            con.close()
        self.evict()
        return self.get(key)  # type: ignore[return-value]

    def fail(self, key: str, owner: str, *, state: str, message: str, progress: Mapping[str, Any] | None = None) -> None:
        """End a run that produced nothing worth keeping (failed before any epoch, or left the queue)."""
        con = self._connect()
        try:
            con.execute("UPDATE runs SET state=?, message=?, finished_at=?, progress=coalesce(?, progress) "
                        "WHERE key=? AND owner=?",
                        (state, message, time.time(), _dumps(dict(progress)) if progress is not None else None,
                         key, owner))
        finally:
            con.close()

    def delete_claim(self, key: str, owner: str) -> None:
        """Give a live claim back (its job never trained: the queue was full, it left the queue)."""
        con = self._connect()
        try:
            con.execute("DELETE FROM runs WHERE key=? AND owner=? AND state IN ('queued','running')", (key, owner))
        finally:
            con.close()

    def delete(self, key: str) -> bool:
        """Remove a stored (non-reference, finished) run and its folder."""
        rec = self.get(key)
        if rec is None or rec.reference or rec.live:
            return False
        con = self._connect()
        try:
            con.execute("DELETE FROM runs WHERE key=? AND reference=0", (key,))
            con.execute("DELETE FROM watchers WHERE key=?", (key,))
        finally:
            con.close()
        if rec.path and self._inside(Path(rec.path)):
            shutil.rmtree(rec.path, ignore_errors=True)
        return True

    def evict(self) -> list[str]:
        """Delete the oldest finished non-reference runs until the store fits ``max_bytes``."""
        removed: list[str] = []
        total = self.total_bytes()
        if total <= self.max_bytes:
            return removed
        candidates = [r for r in self.runs() if not r.reference and r.finished]
        for rec in sorted(candidates, key=lambda r: r.finished_at or r.created_at):
            if total <= self.max_bytes:
                break
            if self.delete(rec.key):
                total -= rec.bytes
                removed.append(rec.key)
        return removed

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to((self.root / "runs").resolve())
        except OSError:
            return False

    # ---- server flags ------------------------------------------------------------------------

    def _flags_connect(self) -> sqlite3.Connection:
        """A connection with the flags table present (made on first use, so older stores get it too)."""
        con = self._connect()
        if not getattr(self, "_flags_ready", False):
            con.execute("CREATE TABLE IF NOT EXISTS flags (name TEXT PRIMARY KEY, value TEXT NOT NULL, "
                        "at REAL NOT NULL)")
            self._flags_ready = True
        return con

    def get_flag(self, name: str, default: str | None = None) -> str | None:
        """A server-wide setting kept in the store (e.g. trainings paused by the instructor), so every
        server process sharing this store sees the same value."""
        con = self._flags_connect()
        try:
            row = con.execute("SELECT value FROM flags WHERE name=?", (name,)).fetchone()
            return row[0] if row else default
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"The run store could not be read ({exc}).") from None
        finally:
            con.close()

    def set_flag(self, name: str, value: str | None) -> None:
        """Set a server-wide flag; ``None`` removes it."""
        con = self._flags_connect()
        try:
            if value is None:
                con.execute("DELETE FROM flags WHERE name=?", (name,))
            else:
                con.execute("INSERT INTO flags (name, value, at) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET "
                            "value=excluded.value, at=excluded.at", (name, str(value), time.time()))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"The run store could not record {name!r} ({exc}).") from None
        finally:
            con.close()

    # ---- repair and reference runs ----------------------------------------------------------

    def reindex(self) -> int:
        """Re-read every complete run folder into the index (after the index was lost)."""
        n = 0
        for folder in sorted((self.root / "runs").iterdir()):
            if folder.name.startswith(".") or not (folder / "run.json").exists():
                if folder.name.startswith(".") and folder.is_dir():
                    shutil.rmtree(folder, ignore_errors=True)  # half-written by a crashed process
                continue
            if self._insert_folder(folder, reference=False):
                n += 1
        return n

    def _insert_folder(self, folder: Path, *, reference: bool) -> bool:
        try:
            meta = json.loads((folder / "run.json").read_text())
            progress = (folder / "progress.json").read_text() if (folder / "progress.json").exists() else "{}"
            key = str(meta["key"])
        except (OSError, ValueError, KeyError):
            return False
        con = self._connect()
        try:
            con.execute("INSERT OR REPLACE INTO runs (key, experiment, settings, data, version, private, reference, "
                        "state, label, device, created_at, started_at, finished_at, progress, metrics, message, path, "
                        "bytes, provenance, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (key, meta["experiment"], _dumps(meta.get("settings", {})), meta.get("data", ""),
                         int(meta.get("version", 1)), int(bool(meta.get("private"))), int(reference),
                         meta.get("state", "done"), meta.get("label", ""), meta.get("device", ""),
                         float(meta.get("created_at", 0.0)), meta.get("started_at"), meta.get("finished_at"),
                         progress, _dumps(meta.get("metrics", {})), meta.get("message"), str(folder.resolve()),
                         0 if reference else _folder_bytes(folder), _dumps(meta.get("provenance", {})),
                         _dumps(meta.get("extra", {}))))
        finally:
            con.close()
        return True

    def load_references(self, folder: str | Path) -> int:
        """Index the shipped reference runs in place (read-only: never copied, never evicted)."""
        folder = Path(folder)
        if not folder.is_dir():
            return 0
        n = 0
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and (sub / "run.json").exists():
                existing = self.get(json.loads((sub / "run.json").read_text()).get("key", ""))
                if existing is not None and existing.reference and existing.path == str(sub.resolve()):
                    n += 1
                    continue
                n += int(self._insert_folder(sub, reference=True))
        return n


def _safe_name(name: str) -> str:
    """A model name as a file name (names are the page's own, e.g. "CNN", "Frozen VGG16")."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:80] or "model"


def new_owner() -> str:
    """An owner token for this process: host, pid and a random part (pids are reused)."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunSpec:
    """What a page would train now: the experiment, its result-changing settings, the data's
    fingerprint, the experiment's version, and (for uploaded data) the uploader's secret."""

    experiment: str
    settings: dict
    data: str = ""
    version: int = 1
    secret: str = ""

    @property
    def key(self) -> str:
        return run_key(self.experiment, self.settings, data=self.data, version=self.version, secret=self.secret)

    @property
    def private(self) -> bool:
        return bool(self.secret)
