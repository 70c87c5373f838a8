"""Training on a Ray cluster: when one server is not enough (several classes, a GPU pool).

Why Ray and the run store: Ray schedules the jobs (CPUs, fractions of GPUs, a queue across every web
replica) and restarts what dies; the run store is already the one place every page reads progress,
Stop requests and finished runs from. So a job here is a Ray task that trains exactly as a local
worker does (``dnn2core.training.TrainingJob`` on the pickled runs) and talks only to the store:
it writes its progress every second, reads Stop and the watchers' heartbeats from it, and stores the
finished run. The web process keeps a ``RayJob`` that reads the progress back from the store,
cancels a queued task on Stop, and kills a running one that has not stopped after a grace period.

Set ``DNN2_RAY_ADDRESS`` (``local`` starts a cluster in this process, ``auto`` joins the one on this
host, ``ray://host:10001`` a remote head). Without it Ray is never imported. ``DNN2_GPU_PER_JOB``
(e.g. 0.25: four jobs share a GPU) or ``DNN2_CPU_PER_JOB`` (default 1) size each task.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from typing import Any

from dnn2core.env import env_number, env_text
from dnn2core.training import Budget, JobProgress, ModelRun

__all__ = ["RayJob", "connect", "job_resources", "ray_address", "shutdown"]

logger = logging.getLogger(__name__)

BEAT_S = 1.0  # the task writes its progress this often
STOP_GRACE_S = 15.0  # a running task that ignores Stop this long is killed
MAX_CALLS = 25  # a Ray worker process is replaced after this many jobs (TensorFlow keeps a few MB per model)
NODE_DIED = ("The cluster node or Ray worker that trained this run went away (a crash, out of memory, or a "
             "machine that left the cluster), so the run was interrupted. Press Start to train it again.")

_lock = threading.Lock()
_remote: Any = None


def ray_address() -> str | None:
    """``DNN2_RAY_ADDRESS``, or None: then the cluster backend is off and Ray is never imported."""
    return env_text("DNN2_RAY_ADDRESS") or None


def job_resources() -> dict[str, float]:
    """What one job asks Ray for: ``num_gpus`` from ``DNN2_GPU_PER_JOB`` (a fraction shares a GPU),
    otherwise ``num_cpus`` from ``DNN2_CPU_PER_JOB`` (default 1)."""
    def read(name: str) -> float | None:
        value = env_number(name, 0.0, above=0, maximum=64) if env_text(name) else None
        return value

    gpus = read("DNN2_GPU_PER_JOB")
    if gpus:
        return {"num_gpus": gpus, "num_cpus": read("DNN2_CPU_PER_JOB") or 1.0}
    return {"num_cpus": read("DNN2_CPU_PER_JOB") or 1.0}


def connect(address: str | None = None) -> Any:
    """Join (or, for ``local``, start) the Ray cluster once per process; returns the remote function."""
    global _remote
    with _lock:
        if _remote is not None:
            return _remote
        import ray

        address = address or ray_address() or "local"
        if not ray.is_initialized():
            if address == "local":  # a cluster on this machine; its workers import dnn2core from this checkout
                from pathlib import Path

                root = str(Path(__file__).resolve().parents[1])
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False,
                         num_cpus=int(env_number("DNN2_RAY_CPUS", 0, whole=True, minimum=0)) or None,
                         runtime_env={"env_vars": {"PYTHONPATH": root}})
                import atexit

                atexit.register(shutdown)  # a cluster this process started leaves no session folder
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        _remote = ray.remote(max_calls=MAX_CALLS, max_retries=0)(_train_on_cluster)
        return _remote


def shutdown() -> None:
    """Stop the Ray connection; a cluster this process started (``local``) also loses its session
    folder under /tmp/ray, which Ray itself keeps for post-mortems."""
    global _remote
    with _lock:
        try:
            import ray
        except ImportError:
            return
        if not ray.is_initialized():
            _remote = None
            return
        node = getattr(getattr(ray, "_private", None) and ray._private.worker, "_global_node", None)
        session = node.get_session_dir_path() if node is not None and node.head else None
        ray.shutdown()
        _remote = None
    if session:
        import shutil
        from pathlib import Path

        shutil.rmtree(session, ignore_errors=True)
        latest = Path(session).parent / "session_latest"
        if latest.is_symlink() and not latest.exists():
            latest.unlink()


def _train_on_cluster(key: str, owner: str, store_path: str, store_max_bytes: int, runs: bytes, budget: Budget,
                      seed: int, label: str, session: str, artifacts: dict) -> str:
    """The Ray task: train the job, mirroring progress, Stop and heartbeats through the store."""
    from dnn2core.jobs import persist_job
    from dnn2core.runs import RunStore
    from dnn2core.training import JobGate, TrainingJob

    store = RunStore(store_path, max_bytes=store_max_bytes)
    job = TrainingJob(pickle.loads(runs), gate=JobGate(1), budget=budget, seed=seed, owner=session, label=label,
                      job_id=key)
    job.artifacts.update(artifacts)
    job.start()
    last_watch = 0.0
    while not job.join(BEAT_S):
        if store.stop_requested(key):
            job.stop()
        watched = store.last_watched(key)
        if watched is not None and watched > last_watch:
            last_watch = watched
            job.heartbeat()
        snap = job.snapshot()
        snap.process = os.getpid()
        store.beat(key, owner, snap.to_dict(), state=snap.state, device=snap.device or None,
                   started_at=snap.started_at)
    snap = job.snapshot()
    snap.process = os.getpid()
    persist_job(store, key, owner, snap, job)
    return snap.state


class RayJob:
    """A job trained by a Ray task, seen by the registry as a ``TrainingJob``.

    The task writes its own progress into the store (``beats_store``), so the registry only reads it.
    """

    beats_store = True

    def __init__(self, runs: list[ModelRun], *, store: Any, budget: Budget, seed: int, session: str, label: str,
                 key: str, owner: str) -> None:
        from dnn2core.training import JobGate, TrainingJob

        plan = TrainingJob(runs, gate=JobGate(1), budget=budget, seed=seed, owner=session, label=label, job_id=key)
        self._payload = pickle.dumps(runs, protocol=pickle.HIGHEST_PROTOCOL)  # raises for unpicklable runs
        self.job_id = key
        self.store = store
        self.budget, self.seed, self.session, self.label, self.owner = budget, int(seed), session, label, owner
        self.models: dict = {}
        self.artifacts: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}  # made where the job trains; that process stores it
        self.stored = False
        self._progress = plan.snapshot()
        self._lock = threading.Lock()
        self._ref: Any = None
        self._stop_at: float | None = None
        self._final: JobProgress | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        remote = connect()
        self._ref = remote.options(**job_resources()).remote(
            self.job_id, self.owner, str(self.store.root), self.store.max_bytes, self._payload, self.budget,
            self.seed, self.label, self.session, dict(self.artifacts))
        self._payload = b""
        self._thread = threading.Thread(target=self._watch, name=f"dnn2-ray-{self.job_id[:8]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop: a queued task is cancelled at once; a running one reads the request from the store
        within a second, and is killed if it has not ended after ``STOP_GRACE_S``."""
        self.store.request_stop(self.job_id)
        with self._lock:
            if self._stop_at is None:
                self._stop_at = time.monotonic()
        if self._ref is not None and self.snapshot().state == "queued":
            import ray

            ray.cancel(self._ref)

    def heartbeat(self) -> None:
        """Nothing to do here: the task reads the watchers from the store."""

    @property
    def done(self) -> bool:
        return self._final is not None

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    def snapshot(self) -> JobProgress:
        if self._final is not None:
            return JobProgress.from_dict(self._final.to_dict())
        record = self.store.get(self.job_id)
        if record is not None and record.progress:
            snap = JobProgress.from_dict(record.progress)
            snap.state = record.state if record.state in ("queued", "running") else snap.state
        else:
            snap = JobProgress.from_dict(self._progress.to_dict())
        if snap.state == "queued":
            snap.queue_position = self._cluster_position()
        return snap

    def should_stop(self) -> str | None:
        return "stopped by you" if self._stop_at is not None else None

    def _cluster_position(self) -> int | None:
        """Place in the cluster's queue: the store's queued runs of every replica, oldest first."""
        queued = sorted((r for r in self.store.runs(states=("queued",), include_private=True, include_reference=False)),
                        key=lambda r: r.created_at)
        keys = [r.key for r in queued]
        return keys.index(self.job_id) + 1 if self.job_id in keys else None

    def _watch(self) -> None:
        import ray

        while True:
            ready, _ = ray.wait([self._ref], timeout=1.0)
            if ready:
                break
            with self._lock:
                stop_at = self._stop_at
            if stop_at is not None and time.monotonic() - stop_at > STOP_GRACE_S:
                ray.cancel(self._ref, force=True)  # ignored Stop: take the slot back
        final = self.snapshot()
        try:
            ray.get(self._ref)
            self.stored = True
            record = self.store.get(self.job_id)
            if record is not None and record.progress:
                final = JobProgress.from_dict(record.progress)
                final.state = record.state
        except ray.exceptions.TaskCancelledError:
            final.state, final.stop_reason = "stopped", final.stop_reason or "stopped by you"
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.RayActorError, ray.exceptions.LocalRayletDiedError) as exc:
            logger.warning("Ray job %s lost its worker: %s", self.job_id, exc)
            final.state, final.message = "interrupted", NODE_DIED
        except Exception as exc:  # noqa: BLE001 - the task raised: the run failed, say why
            final.state, final.message = "failed", f"{type(exc).__name__}: {exc}"
        final.finished_at = final.finished_at or time.time()
        final.queue_position = None
        self._final = final
