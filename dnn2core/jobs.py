"""The server's training jobs, bound to the run store: one job per run key, however many press Start.

Why: thirty learners pressing Start on the same link must train once. ``JobRegistry.start`` claims
the run key in the store (one SQLite transaction, so this holds across server processes too); the
first claim starts a ``TrainingJob``, every later one attaches to it. One sync thread per registry
writes each live job's progress and a beat to the store once a second, reads Stop requests and
watchers from it (so a learner on another page, or another process, keeps the run alive or stops
it), and writes the finished run (history, metrics, artifacts, models) into the store.
"""

from __future__ import annotations

import logging
import pickle
import threading
import weakref
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from dnn2core.env import env_number
from dnn2core.runs import RunRecord, RunSpec, RunStore, new_owner
from dnn2core.training import Budget, JobGate, JobProgress, ModelRun, RunRecipe, TrainingJob, history_frame

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import pandas

    from dnn2core.workers import RemoteJob, WorkerPool

__all__ = ["JobRegistry", "LearnerLimit", "RunView", "collect_garbage", "learner_limits", "persist_job"]

logger = logging.getLogger(__name__)

SYNC_INTERVAL = 1.0  # seconds between progress writes (the page polls once a second)
STORE_ATTEMPTS = 3  # tries to write a finished run before it is recorded as failed
QUIET_COLLECT_S = 30.0  # with no job live, collect garbage (and expire closed tabs' sessions) this often


def collect_garbage() -> None:
    """A full collection at a quiet moment: when a job has just been written to the store, or when
    nothing trains. Keras models and TensorFlow functions sit in reference cycles that only a full
    collection frees; Streamlit's collection after every rerun is off (runner.postScriptGC) because
    it starved training threads, so the server collects here instead."""
    import ctypes
    import gc

    gc.collect()
    # Freed memory stays in glibc's per-thread arenas (every session and every job has its own
    # thread): hand what is free back to the system, or the server's RSS only ever grows.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def _sync_forever(ref: "weakref.ReferenceType[JobRegistry]", wake: threading.Event) -> None:
    """The registry's sync thread: a round every SYNC_INTERVAL (or when woken) while it exists."""
    while True:
        wake.wait(SYNC_INTERVAL)
        wake.clear()
        registry = ref()
        if registry is None:
            return
        registry._sync_round()
        del registry


class LearnerLimit(ValueError):
    """This learner already has as many runs training or waiting as one learner may."""


def learner_limits() -> tuple[int, int]:
    """(running, queued) jobs one session may own at once: ``DNN2_LEARNER_RUNNING`` and
    ``DNN2_LEARNER_QUEUED``, default one of each, so one tab cannot fill the queue."""
    return (int(env_number("DNN2_LEARNER_RUNNING", 1, whole=True, minimum=0)),
            int(env_number("DNN2_LEARNER_QUEUED", 1, whole=True, minimum=0)))


def _summary_metrics(progress: JobProgress) -> dict:
    """The run table's numbers: each model's last epoch and its evaluation results."""
    out: dict[str, dict] = {}
    for name, mp in progress.models.items():
        row: dict[str, Any] = {"epochs": mp.epoch, "params": mp.params}
        if mp.epoch_seconds:
            row["s_per_epoch"] = sum(mp.epoch_seconds) / len(mp.epoch_seconds)
        for metric, values in mp.history.items():
            finite = [v for v in values if v is not None and v == v]
            if finite:
                row[metric] = finite[-1]
        for k, v in mp.results.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = float(v)
        out[name] = row
    return out


def persist_job(store: RunStore, key: str, owner: str, snap: JobProgress, job: "TrainingJob") -> None:
    """Write a finished job into the store: its history, metrics, artifacts, trained models and the
    extra data it made in its slot (a recipe's).

    One home for every place a job finishes: the web process (threads), a worker process, a Ray task.
    A job that trained no epoch keeps nothing: a failure is recorded, anything else frees its key.
    """
    models, artifacts = job.models, job.artifacts
    if job.extra:
        record = store.get(key)
        store.set_extra(key, {**(record.extra if record is not None else {}), **job.extra})
    trained = any(mp.epoch > 0 for mp in snap.models.values())
    if not trained:
        if snap.state in ("failed", "interrupted"):
            store.fail(key, owner, state=snap.state, message=snap.message or snap.state, progress=snap.to_dict())
        else:
            store.delete_claim(key, owner)
        return
    kept = {name: m for name, m in models.items() if name in snap.models and snap.models[name].epoch > 0}
    store.finish(key, owner, state=snap.state, progress=snap.to_dict(), metrics=_summary_metrics(snap),
                 models=kept, artifacts=artifacts or None, message=snap.message, device=snap.device)


@dataclass
class _Entry:
    job: "TrainingJob | RemoteJob"
    key: str
    session: str
    persisted: bool = False
    last_watch_seen: float = 0.0
    store_failures: int = 0


class RunView:
    """What a page draws for one run: live from this process's job, or from the store.

    ``models`` loads a finished run's models on demand (bounded LRU in ``dnn2core.runs``).
    """

    def __init__(self, record: RunRecord, store: RunStore, job: TrainingJob | None = None) -> None:
        self.record = record
        self.store = store
        self.job = job
        self.key = record.key
        self.job_id = record.key
        self._stored: JobProgress | None = None

    def snapshot(self) -> JobProgress:
        if self.record.live and self.job is not None:
            snap = self.job.snapshot()
            if snap.done:  # trained; the sync thread is writing it to the store
                snap.state, snap.current = "running", None
            return snap
        if self._stored is not None:  # a stored run does not change: parse its progress once per view
            return self._stored
        progress = JobProgress.from_dict(self.record.progress) if self.record.progress else JobProgress(self.key)
        progress.state = self.record.state
        progress.message = self.record.message or progress.message
        progress.label = progress.label or self.record.label
        progress.device = progress.device or self.record.device
        if self.record.finished:
            self._stored = progress
        return progress

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def done(self) -> bool:
        """Finished and stored: its models and artifacts can be read."""
        return self.record.finished

    @property
    def settings(self) -> dict:
        return self.record.settings

    def history_frame(self) -> "pandas.DataFrame":
        return history_frame(self.snapshot())

    @property
    def model_names(self) -> list[str]:
        """The models that trained at least one epoch and were stored with the run, in training order."""
        from dnn2core.runs import _safe_name

        stored = set(self.record.model_names)  # one look at the run's folder
        return [n for n, mp in self.snapshot().models.items() if mp.epoch > 0 and _safe_name(n) in stored]

    @property
    def models(self) -> "_LazyModels":
        return _LazyModels(self)

    def artifacts(self) -> dict:
        return self.store.artifacts(self.key) if self.record.path else {}


class _LazyModels(Mapping):
    """A read-only mapping name -> keras.Model that loads from the store on first use."""

    def __init__(self, view: RunView) -> None:
        self._view = view
        self._names = view.model_names

    def __getitem__(self, name: str) -> "keras.Model":
        if name not in self._names:
            raise KeyError(name)
        return self._view.store.load_model(self._view.key, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class JobRegistry:
    """This process's live jobs, keyed by run key; one per server process (a cache_resource)."""

    def __init__(self, store: RunStore, gate: JobGate, pool: "WorkerPool | None" = None) -> None:
        self.store = store
        self.gate = gate
        self.pool = pool  # worker processes train the jobs; None trains in threads of this process
        self.owner = new_owner()
        self._entries: dict[str, _Entry] = {}
        self.quiet_hooks: list[Callable[[], Any]] = []  # run at quiet moments, before the collection
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._last_collect = time.monotonic()
        # The thread holds only a weak reference: a registry nobody uses any more (a test's, a
        # replaced cache entry's) lets its thread end instead of syncing and collecting forever.
        self._thread = threading.Thread(target=_sync_forever, args=(weakref.ref(self), self._wake),
                                        name="dnn2-run-sync", daemon=True)
        self._thread.start()

    # ---- pages ------------------------------------------------------------------------------

    def view(self, key: str) -> RunView | None:
        record = self.store.get(key)
        if record is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
        # A finished run is read from the store: a view never keeps the job (its models, its data)
        # alive in a learner's session.
        return RunView(record, self.store, entry.job if entry and record.live else None)

    def session_live(self, session: str) -> tuple[int, int]:
        """(running, queued) jobs this session started that are still live."""
        running = queued = 0
        with self._lock:
            entries = list(self._entries.values())
        for e in entries:
            if e.session != session or e.persisted:
                continue
            state = e.job.snapshot().state
            if state == "running":
                running += 1
            elif state == "queued":
                queued += 1
        return running, queued

    def start(self, spec: RunSpec, make_runs: Callable[[], "list[ModelRun] | RunRecipe | tuple"], *,
              budget: Budget, seed: int,
              label: str, session: str, replace: bool = False,
              artifacts: Mapping[str, Any] | None = None) -> tuple[RunView, bool]:
        """Train ``spec`` unless it is live or stored: returns (view, started_here).

        ``make_runs`` returns the job's runs (a list of ``ModelRun`` or a ``RunRecipe`` that makes them where
        the job trains), or (runs, extra) or (runs, extra, arrays): ``extra`` is
        plain data and ``arrays`` are NumPy arrays the page's result tabs need, kept with the run. Raises ``QueueFull`` when the server's queue is
        full and ``LearnerLimit`` when this learner already has a run training and one waiting;
        neither leaves a run in the store.
        """
        key = spec.key
        existing = self.store.get(key)
        if existing is not None and (existing.live or existing.reference or
                                     (not replace and existing.state in ("done", "stopped"))):
            return self.view(key), False  # type: ignore[return-value]
        running, queued = self.session_live(session)
        max_running, max_queued = learner_limits()
        if running + queued >= max_running + max_queued or queued >= max_queued:
            raise LearnerLimit(f"You already have {running} run(s) training and {queued} waiting: one learner may "
                               f"have {max_running} training and {max_queued} waiting. Stop one, or wait for it.")
        record, created = self.store.claim(key, spec.experiment, spec.settings, owner=self.owner, data=spec.data,
                                           version=spec.version, private=spec.private, label=label, replace=replace)
        if not created:
            return self.view(key), False  # type: ignore[return-value]
        try:
            made = make_runs()
            runs, extra, arrays = (tuple(made) + (None,))[:3] if isinstance(made, tuple) else (made, None, None)
            artifacts = {**(artifacts or {}), **(arrays or {})}
            if extra:
                self.store.set_extra(key, extra)
                record = self.store.get(key) or record
            job = self._make_job(runs, budget=budget, seed=seed, session=session, label=label, key=key)
            if artifacts:
                job.artifacts.update(artifacts)
            job.start()
        except BaseException:
            self.store.delete_claim(key, self.owner)  # nothing trained: the settings are free to start again
            raise
        with self._lock:
            self._entries[key] = _Entry(job, key, session)
        self._wake.set()
        return RunView(record, self.store, job), True

    def _make_job(self, runs: "list[ModelRun] | RunRecipe", *, budget: Budget, seed: int, session: str, label: str,
                  key: str) -> "TrainingJob | RemoteJob":
        """A worker process trains the job when there is a pool; runs that cannot be pickled (a page's
        closure) train in a thread here, as they did before the split."""
        from dnn2core.cluster import ray_address

        if ray_address() is not None:  # a Ray cluster trains it (dnn2core.cluster)
            from dnn2core.cluster import RayJob

            try:
                return RayJob(runs, store=self.store, budget=budget, seed=seed, session=session, label=label, key=key,
                              owner=self.owner)
            except (TypeError, AttributeError, pickle.PicklingError) as exc:
                logger.info("Run %s trains in the web process: its runs cannot be sent to the cluster (%s)", key, exc)
        elif self.pool is not None:
            from dnn2core.workers import RemoteJob

            try:
                return RemoteJob(runs, pool=self.pool, gate=self.gate, budget=budget, seed=seed, session=session,
                                 label=label, key=key, owner=self.owner, store_path=str(self.store.root),
                                 store_max_bytes=self.store.max_bytes)
            except (TypeError, AttributeError, pickle.PicklingError) as exc:
                logger.info("Run %s trains in the web process: its runs cannot be sent to a worker (%s)", key, exc)
        return TrainingJob(runs, gate=self.gate, budget=budget, seed=seed, owner=session, label=label, job_id=key)

    def stop(self, key: str) -> None:
        """Stop a run wherever it trains: here at once, in another process through the store."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            entry.job.stop()
        self.store.request_stop(key)
        self._wake.set()

    def live_keys(self) -> list[str]:
        with self._lock:
            return [k for k, e in self._entries.items() if not e.persisted]

    def wait(self, key: str, timeout: float) -> RunRecord | None:
        """Block until the run is finished and stored (tests, the reference command)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.store.get(key)
            if record is not None and record.finished:
                return record
            self._wake.set()
            time.sleep(0.1)
        return self.store.get(key)

    # ---- the sync thread --------------------------------------------------------------------

    def _sync_round(self) -> None:
        """One pass of the sync thread: write live jobs' progress, forget persisted ones, and tidy up
        at quiet moments (a full collection only when there is something to free: a job was just
        written, or a quiet hook dropped something, e.g. closed tabs' sessions)."""
        with self._lock:
            entries = [e for e in self._entries.values() if not e.persisted]
        for entry in entries:
            try:
                self._sync(entry)
            except Exception:  # noqa: BLE001 - one broken run must not stop the others' progress
                logger.exception("Run store sync failed for %s", entry.key)
        with self._lock:  # forget persisted jobs: their models now live in the store
            done = [k for k, e in self._entries.items() if e.persisted]
            for key in done:
                del self._entries[key]
            idle = not self._entries
        now = time.monotonic()
        if not (done or (idle and now - self._last_collect > QUIET_COLLECT_S)):
            return
        freed = bool(done)
        for hook in list(self.quiet_hooks):
            try:
                freed = bool(hook()) or freed
            except Exception:  # noqa: BLE001 - housekeeping must never stop the sync loop
                logger.exception("Quiet-moment hook failed")
        if freed:
            collect_garbage()
        self._last_collect = now

    def _sync(self, entry: _Entry) -> None:
        job, key = entry.job, entry.key
        snap = job.snapshot()
        if not snap.done and getattr(job, "beats_store", False):  # a Ray task reads and writes the store itself
            if self.store.stop_requested(key):
                job.stop()
            if snap.state == "queued":
                self.store.beat(key, self.owner)  # waiting in the cluster's queue: still alive
            return
        if not snap.done:
            last = self.store.last_watched(key)
            if last is not None and last > entry.last_watch_seen:
                entry.last_watch_seen = last
                job.heartbeat()
            if self.store.stop_requested(key):
                job.stop()
            self.store.beat(key, self.owner, snap.to_dict(), state=snap.state, device=snap.device or None,
                            started_at=snap.started_at)
            return
        if getattr(job, "stored", False):  # a worker wrote the finished run itself
            entry.persisted = True
            return
        try:
            persist_job(self.store, key, self.owner, snap, job)
        except Exception as exc:  # noqa: BLE001 - a run that cannot be written must not stay "running"
            entry.store_failures += 1
            if entry.store_failures < STORE_ATTEMPTS:
                raise  # logged by the sync loop; tried again in a second (h5py can fail once under load)
            self.store.fail(key, self.owner, state="failed", progress=snap.to_dict(),
                            message=f"The run trained but could not be stored: {type(exc).__name__}: {exc}")
        entry.persisted = True
