"""Training in worker processes: ``fit()`` leaves the web process.

Why: a fit inside the Streamlit process shares its GIL with every page a learner opens, and
TensorFlow keeps a few MB of every traced model for good (measured: +5.6 MB per ``model.fit`` with
gc and ``malloc_trim``), so a class's runs would grow the server for ever. A worker is a spawned
process that imports TensorFlow once (it starts warm, before the first job), trains one job at a
time (its runs, or a ``RunRecipe`` it makes them from: cats vs dogs decodes its photos, loads its
pretrained base and extracts features here, never in the web process), writes the finished run into the run store itself, and is replaced by a fresh one after
``DNN2_WORKER_MAX_JOBS`` jobs or when its memory passes ``DNN2_WORKER_MAX_MB``.

The web process keeps the queue (``JobGate``, so learners see an honest place in line) and one
``RemoteJob`` per job, which looks like a ``TrainingJob`` to the registry and the pages: the
worker sends its progress twice a second; Stop and heartbeats go the other way. A worker that dies
(a crash, out of memory, ``kill -9``) leaves its run ``interrupted`` with a message, and the pool
starts another one for the next job.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dnn2core.device import process_rss_mb
from dnn2core.env import env_number
from dnn2core.training import STOP_USER, Budget, JobGate, JobProgress, ModelRun, QueuedJob, RunRecipe, default_max_jobs

if TYPE_CHECKING:  # pragma: no cover
    from multiprocessing.connection import Connection

__all__ = ["RemoteJob", "WorkerPool", "default_workers", "shared_pool", "worker_limits"]

logger = logging.getLogger(__name__)

PROGRESS_S = 0.5  # a worker sends its progress this often: the bar and Stop answer twice a second
WORKER_DIED = ("The training worker stopped unexpectedly (it crashed, ran out of memory or was killed), so this "
               "run was interrupted. Press Start to train it again.")


def _read_int(name: str, default: int, minimum: int = 0) -> int:
    return int(env_number(name, default, whole=True, minimum=minimum))


def default_workers() -> int:
    """Worker processes: ``DNN2_WORKERS``, else one per training slot (``default_max_jobs``: one per
    GPU, or cores // 4 on a CPU, at least 1). ``DNN2_WORKERS=0`` trains in threads of the web
    process, as before the split (a laptop, a debugger)."""
    return _read_int("DNN2_WORKERS", default_max_jobs())


def worker_nice() -> int:
    """How much lower than the web process a worker runs (``DNN2_WORKER_NICE``, default 10, 0 = same).

    Pages first: on a small server the worker and the web process share the cores, and a learner's
    click must not wait behind another learner's epoch. Training still gets every idle cycle.
    Measured on 2 cores (bench_waiting): a page rerun's p95 while a CNN trains was 1.92x its idle
    value at nice 5 and 1.47x at nice 10, for the same training time alone."""
    return _read_int("DNN2_WORKER_NICE", 10)


def worker_limits() -> tuple[int, float]:
    """(jobs, MB) after which a worker is replaced by a fresh one: ``DNN2_WORKER_MAX_JOBS`` (default
    25) and ``DNN2_WORKER_MAX_MB`` (default 4096), so TensorFlow's per-model leftovers stay bounded."""
    return _read_int("DNN2_WORKER_MAX_JOBS", 25, minimum=1), float(_read_int("DNN2_WORKER_MAX_MB", 4096, minimum=1))


# --------------------------------------------------------------------------------------------
# The worker process
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _JobOrder:
    """Everything a worker needs to train one job and store it (pickled through the pipe)."""

    key: str
    owner: str  # the registry's store owner: the worker writes the run under it
    store_path: str
    store_max_bytes: int
    runs: bytes  # the pickled ModelRun list, or a RunRecipe the worker makes them from
    budget: Budget
    seed: int
    label: str
    session: str
    artifacts: dict


def _worker_main(conn: "Connection", max_jobs: int, max_mb: float, nice: int = 0) -> None:
    """A worker's life: import TensorFlow, say ready, train jobs until told to exit or retired."""
    from dnn2core.device import configure_tensorflow

    if nice > 0:
        try:
            os.nice(nice)
        except OSError:  # a platform or container that refuses it: train at the same priority
            pass

    parent = os.getppid()

    def orphan_watch() -> None:  # a server killed with -9 must not leave a worker training for nobody
        while os.getppid() == parent:
            time.sleep(2.0)
        os._exit(0)

    threading.Thread(target=orphan_watch, name="dnn2-orphan-watch", daemon=True).start()
    info = configure_tensorflow()  # warm: the import is paid once per worker, before any job
    try:
        conn.send(("ready", os.getpid(), info.label))
    except (BrokenPipeError, OSError):
        return  # the pool closed while this (replacement) worker was importing TensorFlow
    jobs = 0
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the server went away
        if msg == "exit":
            return
        if not (isinstance(msg, tuple) and msg[0] == "job"):
            continue  # a late Stop or heartbeat for a job that has already finished
        jobs += 1
        if _train_order(conn, msg[1], lambda: jobs >= max_jobs or process_rss_mb() > max_mb):
            return  # retired: the pool has started a fresh worker in its place


def _train_order(conn: "Connection", order: _JobOrder, retire: Any) -> bool:
    """Train one job, store it, and tell the pool; True when this worker retires after it."""
    from dnn2core.jobs import collect_garbage, persist_job
    from dnn2core.runs import RunStore
    from dnn2core.training import TrainingJob

    try:
        runs = pickle.loads(order.runs)
        job = TrainingJob(runs, gate=JobGate(1), budget=order.budget, seed=order.seed, owner=order.session,
                          label=order.label, job_id=order.key)
        job.artifacts.update(order.artifacts)
        job.start()
    except BaseException as exc:  # noqa: BLE001 - report, never die with the job
        logger.exception("Worker could not start job %s", order.key)
        conn.send(("done", {"job_id": order.key, "state": "failed", "message": f"{type(exc).__name__}: {exc}"},
                   False, False))
        return False
    while True:
        finished = job.join(PROGRESS_S)
        while conn.poll(0):
            cmd = conn.recv()
            if cmd == "stop":
                job.stop()
            elif cmd == "beat":
                job.heartbeat()
        if finished:
            break
        snap = job.snapshot()
        snap.process = os.getpid()
        conn.send(("progress", snap.to_dict()))
    snap = job.snapshot()
    snap.process = os.getpid()
    try:
        store = RunStore(order.store_path, max_bytes=order.store_max_bytes)
        persist_job(store, order.key, order.owner, snap, job)
        stored = True
    except BaseException as exc:  # noqa: BLE001
        logger.exception("Worker could not store job %s", order.key)
        snap.state, snap.message = "failed", f"The run could not be stored: {type(exc).__name__}: {exc}"
        stored = False
    del job, runs
    collect_garbage()
    retiring = bool(retire())
    conn.send(("done", snap.to_dict(), stored, retiring))
    return retiring


# --------------------------------------------------------------------------------------------
# The web process's side
# --------------------------------------------------------------------------------------------


_MAIN_LOCK = threading.Lock()


class _plain_main:
    """Start a spawned process without the app's script as its ``__main__``.

    Why: while Streamlit runs a page it puts the script (app.py) in ``sys.modules["__main__"]``, and a
    spawned child re-runs its parent's main file before it starts working. Every worker used to run
    the whole app once at start (with "missing ScriptRunContext" warnings in the server log). For the
    instant of ``start()`` the child is told that ``__main__`` is a bare module."""

    def __enter__(self) -> None:
        import types

        _MAIN_LOCK.acquire()
        self.saved = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            sys.modules["__main__"] = self.saved
        _MAIN_LOCK.release()


class _Worker:
    """One worker process and its pipe, as the pool sees it."""

    def __init__(self, ctx: Any, max_jobs: int, max_mb: float, nice: int = 0) -> None:
        parent, child = ctx.Pipe()
        self.conn = parent
        self.process = ctx.Process(target=_worker_main, args=(child, max_jobs, max_mb, nice), name="dnn2-worker",
                                   daemon=True)
        with _plain_main():
            self.process.start()
        child.close()
        self.pid = self.process.pid
        self.device = ""
        self.ready = False
        self.send_lock = threading.Lock()

    def wait_ready(self, stop: threading.Event, timeout: float = 300.0) -> bool:
        """Block until the worker has imported TensorFlow (or died, or the job was stopped)."""
        deadline = time.monotonic() + timeout
        while not self.ready and time.monotonic() < deadline and not stop.is_set():
            try:
                if self.conn.poll(0.25):
                    msg = self.conn.recv()
                    if msg[0] == "ready":
                        self.ready, self.device = True, msg[2]
            except (EOFError, OSError):
                return False
            if not self.process.is_alive() and not self.ready:
                return False
        return self.ready

    def send(self, msg: Any) -> None:
        with self.send_lock:
            self.conn.send(msg)

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


class WorkerPool:
    """``size`` worker processes, started at once (warm) and replaced when one retires or dies."""

    def __init__(self, size: int, *, max_jobs: int | None = None, max_mb: float | None = None,
                 nice: int | None = None) -> None:
        import multiprocessing

        if size < 1:
            raise ValueError(f"A worker pool needs at least one worker, got {size}.")
        limits = worker_limits()
        self.max_jobs = max_jobs if max_jobs is not None else limits[0]
        self.max_mb = max_mb if max_mb is not None else limits[1]
        self.nice = nice if nice is not None else worker_nice()
        # spawn, never fork: the web process runs threads, and TensorFlow must not be forked
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._idle: list[_Worker] = [_Worker(self._ctx, self.max_jobs, self.max_mb, self.nice) for _ in range(size)]
        self._busy: set[_Worker] = set()
        self.size = size
        self.started = size  # workers started so far (replacements included)

    def lease(self) -> _Worker:
        """A worker for one job: the caller holds a gate slot, so one is always free."""
        with self._lock:
            while self._idle:
                worker = self._idle.pop(0)
                if worker.process.is_alive():
                    self._busy.add(worker)
                    return worker
                worker.close()
            worker = self._spawn_locked()
            self._busy.add(worker)
            return worker

    def give_back(self, worker: _Worker, *, alive: bool) -> None:
        """Return a worker after its job; a retired or dead one is replaced at once (it warms while idle)."""
        with self._lock:
            self._busy.discard(worker)
            if alive and worker.process.is_alive():
                self._idle.append(worker)
                return
            worker.close()
            self._idle.append(self._spawn_locked())

    def _spawn_locked(self) -> _Worker:
        self.started += 1
        return _Worker(self._ctx, self.max_jobs, self.max_mb, self.nice)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in [*self._idle, *self._busy] if w.process.is_alive()]

    def close(self) -> None:
        with self._lock:
            workers = [*self._idle, *self._busy]
            self._idle, self._busy = [], set()
        for w in workers:
            w.close()


_POOLS: dict[int, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(size: int) -> WorkerPool:
    """This process's pool of ``size`` workers (one per server process; tests share it too)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(size)
        if pool is None:
            pool = _POOLS[size] = WorkerPool(size)
        return pool


class RemoteJob(QueuedJob):
    """A job trained by a worker process, seen by the registry as a ``TrainingJob``.

    It waits for a gate slot here (``QueuedJob``: queue positions stay honest), leases a worker, sends it the
    pickled runs, and mirrors the progress the worker sends. The worker stores the finished run
    itself: ``stored`` says it did, so the registry only records a worker that died.
    """

    def __init__(self, runs: "list[ModelRun] | RunRecipe", *, pool: WorkerPool, gate: JobGate, budget: Budget, seed: int,
                 session: str, label: str, key: str, owner: str, store_path: str, store_max_bytes: int) -> None:
        from dnn2core.training import TrainingJob

        # Validate (and show the planned epochs) exactly as a local job would; its thread never starts.
        self._plan = TrainingJob(runs, gate=gate, budget=budget, seed=seed, owner=session, label=label, job_id=key)
        self._payload = pickle.dumps(runs, protocol=pickle.HIGHEST_PROTOCOL)  # raises for unpicklable runs
        self.job_id = key
        self.gate = gate
        self.pool = pool
        self.budget = budget
        self.seed = int(seed)
        self.session, self.label, self.owner = session, label, owner
        self.store_path, self.store_max_bytes = store_path, store_max_bytes
        self.models: dict = {}  # never in this process: the finished run's models are read from the store
        self.artifacts: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}  # made in the worker, which stores it with the run
        self.stored = False
        self.worker_pid: int | None = None
        self._lock = threading.Lock()
        self._progress = self._plan.snapshot()
        self._stop = threading.Event()
        self._halt_reason: str | None = None
        self._worker: _Worker | None = None
        self._last_heartbeat = time.monotonic()
        self._thread: threading.Thread | None = None

    # ---- the TrainingJob surface the registry and pages use -----------------------------------

    def start(self) -> None:
        self._enqueue_and_run(self._run, f"dnn2-remote-{self.job_id[:8]}")

    def stop(self) -> None:
        self._halt(STOP_USER)

    def _halt(self, reason: str) -> None:
        """Record the first reason to stop, and tell the worker (if it has the job yet)."""
        with self._lock:
            if self._halt_reason is None:
                self._halt_reason = reason
        self._stop.set()
        self._send("stop")

    def heartbeat(self) -> None:
        self._last_heartbeat = time.monotonic()
        self._send("beat")

    @property
    def done(self) -> bool:
        with self._lock:
            return self._progress.done

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    def snapshot(self) -> JobProgress:
        with self._lock:
            snap = JobProgress.from_dict(self._progress.to_dict())
        return self._place_in_line(snap)

    def should_stop(self) -> str | None:
        return (self._halt_reason or STOP_USER) if self._stop.is_set() else None

    # ---- the job's thread in the web process -------------------------------------------------

    def _send(self, msg: Any) -> None:
        worker = self._worker
        if worker is None:
            return
        try:
            worker.send(msg)
        except (OSError, ValueError, BrokenPipeError):
            pass  # the worker is gone: the job's thread reports it

    def _set(self, progress: JobProgress) -> None:
        with self._lock:
            self._progress = progress

    def _finish_here(self, state: str, message: str | None = None) -> None:
        with self._lock:
            p = self._progress
            p.state, p.message, p.finished_at, p.queue_position, p.current = state, message, time.time(), None, None
            if state == "stopped" and p.stop_reason is None:
                p.stop_reason = self._halt_reason or STOP_USER
            for mp in p.models.values():
                if mp.state in ("pending", "running"):
                    mp.state = "stopped" if state != "failed" else mp.state

    def _run(self) -> None:
        admitted = False
        try:
            admitted = self._wait_for_slot(self._stop)
            if not admitted:
                self._finish_here("stopped")
                return
            with self._lock:
                self._progress.state, self._progress.queue_position = "running", None
                self._progress.started_at = time.time()
            self._train_remotely()
        except BaseException as exc:  # noqa: BLE001 - never die silently
            logger.exception("Remote job %s failed", self.job_id)
            self._finish_here("failed", f"{type(exc).__name__}: {exc}")
        finally:
            self.gate.release(self.job_id)

    def _train_remotely(self) -> None:
        worker = self.pool.lease()
        alive = False
        try:
            if not worker.wait_ready(self._stop):
                if self._stop.is_set():
                    alive = worker.process.is_alive()
                    self._finish_here("stopped")
                else:
                    self._finish_here("interrupted", WORKER_DIED)
                return
            self._worker, self.worker_pid = worker, worker.pid
            order = _JobOrder(self.job_id, self.owner, self.store_path, self.store_max_bytes, self._payload,
                              self.budget, self.seed, self.label, self.session, dict(self.artifacts))
            worker.send(("job", order))
            self._payload = b""
            if self._stop.is_set():
                worker.send("stop")
            alive = self._relay(worker)
        finally:
            self._worker = None
            self.pool.give_back(worker, alive=alive)

    def _relay(self, worker: _Worker) -> bool:
        """Mirror the worker's messages until its job is done; False when the worker is gone."""
        while True:
            try:
                if not worker.conn.poll(1.0):
                    if not worker.process.is_alive():
                        raise EOFError
                    continue
                msg = worker.conn.recv()
            except (EOFError, OSError):
                self._finish_here("interrupted", WORKER_DIED)
                return False
            if msg[0] == "progress":
                self._set(JobProgress.from_dict(msg[1]))
            elif msg[0] == "done":
                progress, self.stored, retiring = JobProgress.from_dict(msg[1]), bool(msg[2]), bool(msg[3])
                self._set(progress)
                return not retiring
