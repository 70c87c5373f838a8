"""Live training that never blocks a Streamlit script: a worker thread runs ``model.fit``.

Why a thread and plain data: calling ``st.*`` from inside ``fit`` lets a widget click abort
training half-way (streamlit#9634), so the worker only writes numbers into a locked progress
object; the UI polls ``TrainingJob.snapshot()`` from a fragment and calls ``stop()``.

Why a gate and budgets: one server serves a whole class. ``JobGate`` lets a fixed number of jobs
train at once (one per GPU) and queues the rest in arrival order; every job carries a ``Budget``
so a closed tab (its session lingers, streamlit#6166) cannot hold the slot for long.

TensorFlow and Keras are imported inside functions only: importing this module stays cheap.
"""

from __future__ import annotations

import copy
import glob
import logging
import math
import os
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only, never imported at run time
    import keras
    import pandas

__all__ = [
    "Budget",
    "JobGate",
    "JobProgress",
    "ModelProgress",
    "BuiltRuns",
    "ModelRun",
    "PlannedRun",
    "QueueFull",
    "RunRecipe",
    "TrainingJob",
    "build_locked",
    "default_max_jobs",
    "current_job",
    "estimate_eta",
    "report_phase",
    "step_eta",
    "stop_requested_now",
    "format_eta",
    "history_frame",
]

logger = logging.getLogger(__name__)

# Keras model building is not thread-safe (tensorflow#39450, #35813): every build goes through this.
BUILD_LOCK = threading.Lock()

def build_locked(build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Every Keras model build on the server goes through here: page summaries as well as jobs."""
    with BUILD_LOCK:
        return build(*args, **kwargs)


# How often the batch callback copies the running means for the UI (seconds). Converting and
# copying logs on every batch slows ``fit`` (tensorflow#37876); the UI polls once a second anyway.
PROGRESS_INTERVAL = 0.25

STOP_USER = "stopped by you"
STOP_EPOCHS = "epoch budget"
STOP_SAMPLES = "sample budget"
STOP_TIME = "time budget"
STOP_ABANDONED = "abandoned (no heartbeat)"

JOB_STATES = ("queued", "running", "done", "stopped", "failed")
MODEL_STATES = ("pending", "running", "done", "stopped", "failed")
_FINISHED = frozenset({"done", "stopped", "failed", "interrupted"})  # interrupted: read from the run store


# --------------------------------------------------------------------------------------------
# Budgets and the server-wide gate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """Upper bounds for one job, so an abandoned tab cannot hold the server."""

    max_epochs: int = 100  # per model: a run asking for more epochs is cut to this many
    max_samples: int = 20_000_000  # training samples seen across all epochs and models of the job
    max_seconds: float = 900.0  # wall-clock seconds from admission (queue time not counted)
    idle_seconds: float = 180.0  # no heartbeat() from the UI for this long => abandoned, stops

    @classmethod
    def from_env(cls, **overrides: Any) -> "Budget":
        """The server's budget: ``DNN2_JOB_SECONDS`` (default 1800: the course's 500-epoch forecasting run
        fits) and ``DNN2_IDLE_SECONDS`` (180), read here only, so every page and the README agree;
        pages set only the epoch and sample caps of their experiment."""
        from dnn2core.env import env_number

        values = {"max_seconds": env_number("DNN2_JOB_SECONDS", 1800.0, above=0),
                  "idle_seconds": env_number("DNN2_IDLE_SECONDS", 180.0, above=0)}
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        for name in ("max_epochs", "max_samples", "max_seconds", "idle_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Budget.{name} must be a positive number, got {value!r}.")


class JobStopped(RuntimeError):
    """Raised by long work inside a job (e.g. feature extraction in a build function) when
    ``TrainingJob.should_stop()`` says so: the job then ends as "stopped", not "failed"."""


class QueueFull(ValueError):
    """The waiting queue is full: the server is busy, the learner should try again later."""


class JobGate:
    """Server-wide limit on concurrently running jobs with a FIFO waiting queue.

    Shared by all sessions (through ``st.cache_resource``). A plain semaphore would let a late
    arrival overtake someone who has waited for minutes; here only the head of the queue may
    take a free slot, so every learner can be shown an honest place in line.
    """

    def __init__(self, max_running: int, max_waiting: int = 100) -> None:
        if isinstance(max_running, bool) or not isinstance(max_running, int) or max_running < 1:
            raise ValueError(f"max_running must be a whole number >= 1, got {max_running!r}.")
        if isinstance(max_waiting, bool) or not isinstance(max_waiting, int) or max_waiting < 0:
            raise ValueError(f"max_waiting must be a whole number >= 0, got {max_waiting!r}.")
        self._max_running = max_running
        self._max_waiting = max_waiting
        self._cond = threading.Condition()
        self._running: list[str] = []
        self._waiting: deque[str] = deque()

    @property
    def max_running(self) -> int:
        return self._max_running

    @property
    def max_waiting(self) -> int:
        return self._max_waiting

    def enqueue(self, job_id: str) -> None:
        """Take a place in line now (raises ``QueueFull`` at once, so the UI can say "busy")."""
        with self._cond:
            self._enqueue_locked(job_id)

    def _enqueue_locked(self, job_id: str) -> None:
        if job_id in self._running or job_id in self._waiting:
            return
        free_now = not self._waiting and len(self._running) < self._max_running
        if not free_now and len(self._waiting) >= self._max_waiting:
            raise QueueFull(
                f"The server is busy: {len(self._running)} job(s) training and "
                f"{len(self._waiting)} waiting (limit {self._max_waiting}). Try again in a few minutes."
            )
        self._waiting.append(job_id)

    def acquire(
        self,
        job_id: str,
        stop_event: threading.Event,
        poll: float = 0.1,
        on_wait: Callable[[int], None] | None = None,
    ) -> bool:
        """Block in FIFO order until a slot is free; True when admitted.

        Returns False (and leaves the queue) if ``stop_event`` is set while waiting. ``on_wait``
        is called with the 1-based queue position about every ``poll`` seconds, outside the lock,
        so a job can publish its position and check its own idle budget.
        """
        with self._cond:
            if job_id in self._running:
                return True
            self._enqueue_locked(job_id)
        try:
            while True:
                with self._cond:
                    if (
                        self._waiting
                        and self._waiting[0] == job_id
                        and len(self._running) < self._max_running
                    ):
                        self._waiting.popleft()
                        self._running.append(job_id)
                        self._cond.notify_all()
                        return True
                    if stop_event.is_set():
                        self._leave_queue_locked(job_id)
                        return False
                    position = self._waiting.index(job_id) + 1
                    self._cond.wait(poll)
                if on_wait is not None:
                    on_wait(position)
        except BaseException:
            with self._cond:
                self._leave_queue_locked(job_id)
            raise

    def _leave_queue_locked(self, job_id: str) -> None:
        try:
            self._waiting.remove(job_id)
        except ValueError:
            pass
        self._cond.notify_all()

    def release(self, job_id: str) -> None:
        """Free the job's slot or place in line. Idempotent: safe in every ``finally``."""
        with self._cond:
            if job_id in self._running:
                self._running.remove(job_id)
            self._leave_queue_locked(job_id)

    def position(self, job_id: str) -> int | None:
        """1-based place in the waiting queue; None if running or unknown."""
        with self._cond:
            try:
                return self._waiting.index(job_id) + 1
            except ValueError:
                return None

    def running(self) -> list[str]:
        with self._cond:
            return list(self._running)

    def waiting(self) -> list[str]:
        with self._cond:
            return list(self._waiting)

    def set_max_running(self, n: int) -> None:
        """Change the number of training slots live (the instructor's panel). Waiters are woken so a
        new slot is taken at once; fewer slots let running jobs finish and admit nobody until one frees."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"max_running must be a whole number >= 1, got {n!r}.")
        with self._cond:
            self._max_running = n
            self._cond.notify_all()


def _visible_gpus() -> int:
    """Count GPUs without importing TensorFlow (the sidebar must stay fast)."""
    if "tensorflow" in sys.modules:  # already paid for: ask it
        try:
            return len(sys.modules["tensorflow"].config.list_physical_devices("GPU"))
        except Exception:  # a half-imported or broken TF: fall back to device files
            pass
    device_files = [p for p in glob.glob("/dev/nvidia*") if p[len("/dev/nvidia"):].isdigit()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return len(device_files)
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if not entries or entries[0].startswith("-"):
        return 0  # "" or "-1" hides every GPU
    return min(len(entries), len(device_files)) if device_files else 0


def default_max_jobs() -> int:
    """How many jobs may train at once: ``DNN2_MAX_JOBS``, else 1 per GPU, else cores // 4.

    One job per GPU because two fits on one card mostly fight for memory; on CPU, TensorFlow
    uses several threads per fit, so a 2-core machine runs one job at a time.
    """
    from dnn2core.env import env_number

    chosen = int(env_number("DNN2_MAX_JOBS", 0, whole=True, minimum=1))
    if chosen:
        return chosen
    gpus = _visible_gpus()
    if gpus:
        return gpus
    from dnn2core.device import cpu_cores

    return max(1, cpu_cores() // 4)


# --------------------------------------------------------------------------------------------
# What a job trains and what it reports
# --------------------------------------------------------------------------------------------


@dataclass
class ModelRun:
    """One model to train inside a job."""

    name: str  # shown in the UI and used as key, e.g. "Dense", "CNN"
    build: Callable[[], "keras.Model"]  # returns a *compiled* model; called under BUILD_LOCK
    fit_kwargs: dict = field(default_factory=dict)  # passed to model.fit (verbose is forced to 0)
    evaluate: Callable[["keras.Model"], dict] | None = None  # after training, e.g. test accuracy
    initial_model: "keras.Model | None" = None  # train this model further instead of building
    # (trained in place: pass a per-learner copy, never a shared pretrained base)
    prepare: Callable[[], None] | None = None  # long work before the build (feature extraction), run
    # outside BUILD_LOCK so it never blocks other learners' builds; it may raise JobStopped
    task: "Callable[[TrainingJob, str], dict] | None" = None  # heavy work that is not a fit (a batch of
    # attacks): task(job, name) runs in the job's gate slot under its budget, reports with
    # job.report_task(name, done, total), polls job.should_stop(), and returns results like evaluate
    unit: str = "epoch"  # what the progress counts: "epoch", or e.g. "image" for a task
    steps_per_execution: int = 1  # batches per Python step: the same batches and updates, less overhead
    # for small models (Keras runs N steps inside one tf.function call); keep N steps well under 0.5 s
    # so the progress bar and Stop still answer twice a second
    cached_data: bool = False  # feed fit from one cached tf.data pipeline instead of NumPy arrays: small
    # tables pay Keras' per-epoch NumPy set-up (house prices: ~0.3 s of a 0.35 s epoch), so thousands
    # of epochs need it; the same rows, batch size and per-epoch reshuffle (seeded by the job)


@dataclass(frozen=True)
class PlannedRun:
    """A run a ``RunRecipe`` will make: what the queue and live views show before its data exist."""

    name: str
    epochs: int
    unit: str = "epoch"


@dataclass
class BuiltRuns:
    """What a recipe makes where the job trains."""

    runs: list[ModelRun]
    arrays: dict[str, Any] = field(default_factory=dict)  # kept with the run, as a job's artifacts
    extra: dict[str, Any] = field(default_factory=dict)  # plain data merged into the run's extra


@runtime_checkable
class RunRecipe(Protocol):
    """Runs made where they train, from a small picklable description.

    Why: some jobs need large data and models (cats vs dogs: thousands of decoded photos, a 58 MB
    pretrained base, its cached features). A recipe crosses to a worker process in a few kB, and the
    worker decodes, loads and extracts inside the job's slot, with progress and Stop, so the web
    process never holds any of it and a Start click returns at once."""

    def planned(self) -> list[PlannedRun]: ...

    def build(self) -> BuiltRuns: ...


@dataclass
class ModelProgress:
    """Plain-data progress of one model; copied out by ``TrainingJob.snapshot``."""

    name: str
    state: str = "pending"  # pending | running | done | stopped | failed
    epoch: int = 0  # completed epochs
    epochs: int = 0  # planned epochs (after the epoch budget)
    batch: int = 0  # completed batches in the current epoch
    steps: int | None = None  # batches per epoch, None if unknown
    history: dict[str, list[float]] = field(default_factory=dict)  # per-epoch logs
    batch_logs: dict[str, float] = field(default_factory=dict)  # running means within the epoch
    epoch_seconds: list[float] = field(default_factory=list)
    samples_seen: int = 0  # training samples, all epochs (0 when the data size is unknown)
    results: dict = field(default_factory=dict)  # from ModelRun.evaluate
    params: int = 0
    requested_epochs: int = 0  # what fit_kwargs asked for, before the epoch budget
    validating: bool = False  # inside fit's validation pass (the batch counter pauses there)
    unit: str = "epoch"  # what epoch/epochs count: "epoch", or e.g. "image" for a task
    phase: str = ""  # work before the fit, shown instead of the batch counter ("extracting features")
    phase_done: int = 0
    phase_total: int = 0
    phase_unit: str = "item"
    phase_started_at: float | None = None  # time.time(): the phase's own speed gives its ETA
    fit_started_at: float | None = None  # time.time() when fit (or a task) began: this model's own speed


@dataclass
class JobProgress:
    """Plain-data progress of a job: everything the live fragment needs to draw."""

    job_id: str
    label: str = ""
    owner: str = ""
    state: str = "queued"  # queued | running | done | stopped | failed
    stop_reason: str | None = None
    message: str | None = None  # error text when failed
    queue_position: int | None = None
    models: dict[str, ModelProgress] = field(default_factory=dict)
    current: str | None = None
    device: str = ""
    created_at: float = 0.0  # time.time()
    started_at: float | None = None
    finished_at: float | None = None
    elapsed: float = 0.0  # seconds since admission (until finished)
    eta_seconds: float | None = None  # of the current step (phase or model), from its own measured speed
    steps_after: int = 0  # models still to come after the current one (their time is not guessed)
    fraction: float = 0.0
    samples_seen: int = 0  # all models of the job
    process: int = 0  # the pid that trains it when that is not this process (a worker, a Ray task)

    @property
    def done(self) -> bool:
        return self.state in _FINISHED

    def to_dict(self) -> dict:
        """Plain JSON-able data (the run store keeps it; another process redraws from it)."""
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "JobProgress":
        data = dict(data)
        models = {name: ModelProgress(**{k: v for k, v in mp.items() if k in ModelProgress.__dataclass_fields__})
                  for name, mp in (data.pop("models", None) or {}).items()}
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(models=models, **fields)


def history_frame(progress: JobProgress) -> "pandas.DataFrame":
    """Per-epoch history in long form (model, epoch, metric, value) for plots and CSV."""
    import pandas as pd

    rows = []
    for name, mp in progress.models.items():
        for metric, values in mp.history.items():
            for i, value in enumerate(values):
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                rows.append((name, i + 1, metric, float(value)))
    return pd.DataFrame(rows, columns=["model", "epoch", "metric", "value"])


def continue_epochs(history: "pandas.DataFrame", continues: Mapping[str, str]) -> "pandas.DataFrame":
    """Shift the epochs of a model that continues another's training (fine-tuning after the frozen
    head) so its curve starts where that one stopped, as in the course's figure. ``continues``
    maps model -> the model it continues; models not in the history are left alone."""
    if not continues or not len(history):
        return history
    out = history.copy()
    for model, before in continues.items():
        prior = out.loc[out["model"] == before, "epoch"]
        if len(prior):
            out.loc[out["model"] == model, "epoch"] += int(prior.max())
    return out


def format_eta(seconds: float | None) -> str:
    """Short human duration for the progress line ("1 min 05 s"); "estimating…" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "estimating…"
    seconds = max(0.0, float(seconds))
    if seconds < 1:
        return "< 1 s"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def estimate_eta(done_units: float, total_units: float, elapsed: float) -> float | None:
    """Remaining seconds, assuming the measured speed holds; None until there is a measurement."""
    if done_units <= 0 or elapsed <= 0 or total_units <= 0:
        return None
    remaining = max(0.0, total_units - done_units)
    return remaining * elapsed / done_units


def step_eta(mp: ModelProgress, now: float) -> float | None:
    """Seconds left in a model's current phase or fit, from that step's own measured speed.

    One job mixes very different steps (a head trained on cached features runs a thousand times
    faster per batch than fine-tuning VGG16), so a job-wide average promised "< 1 s" for minutes.
    None until the step has measured something."""
    if mp.phase:
        if mp.phase_done <= 0 or mp.phase_started_at is None or mp.phase_total <= 0:
            return None
        return max(0, mp.phase_total - mp.phase_done) * max(0.0, now - mp.phase_started_at) / mp.phase_done
    if mp.fit_started_at is None:
        return None
    steps = mp.steps or 0
    planned = max(mp.epochs, mp.epoch)
    done, total = ((mp.epoch * steps + min(mp.batch, steps), planned * steps) if steps else (mp.epoch, planned))
    return estimate_eta(done, total, max(0.0, now - mp.fit_started_at))


_CURRENT = threading.local()  # the TrainingJob whose thread this is (prepare steps report through it)


def current_job() -> "TrainingJob | None":
    """The job training in this thread, for long work inside a ModelRun (feature extraction) that
    reports progress or checks for Stop; None outside a job."""
    return getattr(_CURRENT, "job", None)


def report_phase(phase: str, done: int, total: int, unit: str = "item") -> None:
    """Progress of the current model's work before its fit ("extracting features", 320 of 2,000
    images); a no-op outside a job."""
    job = current_job()
    if job is not None:
        job.report_phase(phase, done, total, unit)


def stop_requested_now() -> bool:
    """Whether the job training in this thread should stop (Stop, a budget, an abandoned tab)."""
    job = current_job()
    return job is not None and job.should_stop() is not None


# --------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------


def _is_dataset_like(x: Any) -> bool:
    """tf.data datasets, generators and PyDatasets carry their own batching."""
    if x is None:
        return False
    if isinstance(x, dict):
        return False
    if isinstance(x, (list, tuple)):
        return False
    return not hasattr(x, "shape")


def _num_rows(x: Any) -> int | None:
    if isinstance(x, dict):
        x = next(iter(x.values()), None)
    elif isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape"):
        x = x[0]
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] is not None:
        return int(shape[0])
    try:
        return len(x)
    except TypeError:
        return None


def cached_datasets(kwargs: dict, seed: int) -> dict:
    """``fit`` arguments with NumPy ``x``/``y`` (and ``validation_data``) turned into cached tf.data
    pipelines: every row once per epoch, reshuffled each epoch from ``seed``, in batches of
    ``batch_size``; validation in large batches (its mean is the same, its cost is not). Arguments
    this does not cover (sample weights, generators) are returned unchanged."""
    x, y = kwargs.get("x"), kwargs.get("y")
    if (_is_dataset_like(x) or y is None or kwargs.get("validation_split") or kwargs.get("sample_weight") is not None
            or kwargs.get("class_weight") is not None):
        return kwargs
    import numpy as np
    import tensorflow as tf

    def floatx(a: Any) -> Any:  # as Keras' NumPy adapter does: float64 tables become float32
        return a.astype(np.float32) if getattr(a, "dtype", None) == np.float64 else a

    x, y = floatx(x), floatx(y)
    out = {k: v for k, v in kwargs.items() if k not in ("x", "y", "batch_size", "shuffle", "validation_data")}
    batch = int(kwargs.get("batch_size") or 32)
    n = _num_rows(x) or 0
    train = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if kwargs.get("shuffle", True):
        train = train.shuffle(max(n, 1), seed=int(seed), reshuffle_each_iteration=True)
    out["x"] = train.batch(batch).prefetch(tf.data.AUTOTUNE)
    out["shuffle"] = False  # the pipeline reshuffles; Keras would only warn that it ignores the flag
    validation = kwargs.get("validation_data")
    if isinstance(validation, tuple) and len(validation) == 2:
        out["validation_data"] = (tf.data.Dataset.from_tensor_slices(tuple(floatx(v) for v in validation)).cache()
                                  .batch(max(batch, 1024)))
    elif validation is not None:
        out["validation_data"] = validation
    return out


@dataclass
class _FitPlan:
    """What we can know about a run before ``fit`` starts (for budgets, fraction and ETA)."""

    kwargs: dict
    initial_epoch: int
    requested_epochs: int
    epochs: int  # after the epoch budget
    batch_size: int | None
    samples_per_epoch: int | None  # None when unknown (datasets)
    steps: int | None


def _plan_fit(run: ModelRun, budget: Budget) -> _FitPlan:
    kwargs = dict(run.fit_kwargs)
    initial_epoch = int(kwargs.get("initial_epoch", 0) or 0)
    requested = int(kwargs.get("epochs", 1)) - initial_epoch
    if requested < 1:
        raise ValueError(f"{run.name}: epochs must be larger than initial_epoch (got {requested} to train).")
    epochs = min(requested, budget.max_epochs)
    kwargs["epochs"] = initial_epoch + epochs
    kwargs["verbose"] = 0
    x = kwargs.get("x")
    steps_per_epoch = kwargs.get("steps_per_epoch")
    batch_size: int | None
    samples: int | None = None
    if _is_dataset_like(x):
        bs = getattr(x, "_batch_size", None)  # tf.data BatchDataset keeps it as a tensor
        try:
            batch_size = int(bs) if bs is not None else None
        except (TypeError, ValueError):
            batch_size = None
        steps = steps_per_epoch
        if steps is None:
            try:
                n_batches = len(x)  # tf.data with known cardinality, PyDataset
                steps = int(n_batches) if n_batches and n_batches > 0 else None
            except Exception:
                steps = None
    else:
        batch_size = int(kwargs.get("batch_size") or 32)
        rows = _num_rows(x)
        split = float(kwargs.get("validation_split") or 0.0)
        if rows is not None and split and kwargs.get("validation_data") is None:
            rows = int(math.floor(rows * (1.0 - split)))  # as keras' train_validation_split
        samples = rows
        if steps_per_epoch is not None:
            steps = int(steps_per_epoch)
            samples = steps * batch_size
        else:
            steps = math.ceil(rows / batch_size) if rows else None
    return _FitPlan(kwargs, initial_epoch, requested, epochs, batch_size, samples, steps)


def _check_names(names: list) -> None:
    if not names:
        raise ValueError("A training job needs at least one ModelRun.")
    if any(not isinstance(n, str) or not n for n in names):
        raise ValueError("Every ModelRun needs a non-empty name.")
    if len(set(names)) != len(names):
        raise ValueError(f"ModelRun names must be unique, got {names}.")


def _check_runs(runs: list[ModelRun]) -> None:
    _check_names([r.name for r in runs])
    for r in runs:
        if r.task is None and r.initial_model is None and not callable(r.build):
            raise ValueError(f"{r.name}: build must be a function returning a compiled model.")


class QueuedJob:
    """What every job does before it trains: wait in the server's queue in order, with an honest
    place in line, and leave it when its learner is gone. One home for ``TrainingJob`` (trains in
    this process) and ``workers.RemoteJob`` (a worker process trains it).

    A subclass sets ``gate``, ``budget``, ``job_id``, ``_lock``, ``_progress``, ``_thread`` and
    ``_last_heartbeat`` and implements ``_halt(reason)``.
    """

    gate: JobGate
    budget: Budget
    job_id: str
    _lock: threading.Lock
    _progress: JobProgress
    _thread: threading.Thread | None
    _last_heartbeat: float

    def _halt(self, reason: str) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def _enqueue_and_run(self, target: Callable[[], None], thread_name: str) -> None:
        """Join the queue and start the job's thread (which waits for its slot); returns at once.

        Raises ``QueueFull`` right here (not in the thread) so the page can say "busy" now."""
        with self._lock:
            if self._thread is not None:
                return
            self._last_heartbeat = time.monotonic()
            try:
                self.gate.enqueue(self.job_id)
            except QueueFull as exc:
                self._progress.state = "failed"
                self._progress.message = str(exc)
                self._progress.finished_at = time.time()
                raise
            self._progress.queue_position = self.gate.position(self.job_id)
            self._thread = threading.Thread(target=target, name=thread_name, daemon=True)
            self._thread.start()

    def _wait_for_slot(self, stop_event: threading.Event) -> bool:
        """Block until the gate admits this job (True), or it was stopped or abandoned in line."""
        return self.gate.acquire(self.job_id, stop_event, on_wait=self._on_queue_wait)

    def _on_queue_wait(self, position: int) -> None:
        with self._lock:
            self._progress.queue_position = position
        if time.monotonic() - self._last_heartbeat > self.budget.idle_seconds:
            self._halt(STOP_ABANDONED)

    def _place_in_line(self, snap: JobProgress) -> JobProgress:
        """A snapshot's queue position as of now (the gate's), None once the job has left the queue."""
        if snap.state == "queued":
            pos = self.gate.position(self.job_id)
            snap.queue_position = pos if pos is not None else snap.queue_position
        else:
            snap.queue_position = None
        return snap


class TrainingJob(QueuedJob):
    """Train one or more models in a background thread, one after another, under a gate slot.

    The worker writes only plain data; the UI reads ``snapshot()``, calls ``heartbeat()`` on
    each poll and ``stop()`` from a button. ``models`` holds each trained model once it finishes
    (also after a stop), so a page can evaluate or show it.
    """

    def __init__(
        self,
        runs: "list[ModelRun] | RunRecipe",
        *,
        gate: JobGate,
        budget: Budget = Budget(),
        seed: int = 0,
        owner: str = "",
        label: str = "",
        job_id: str | None = None,
    ) -> None:
        self.recipe: RunRecipe | None = None
        if isinstance(runs, RunRecipe):  # the runs are made in the job's slot (``_build_recipe``)
            self.recipe, planned, runs = runs, list(runs.planned()), []
            _check_names([p.name for p in planned])
        else:
            _check_runs(runs)
            planned = [PlannedRun(r.name, 0, r.unit) for r in runs]
        self.runs = list(runs)
        self.gate = gate
        self.budget = budget
        self.seed = int(seed)
        self.job_id = job_id or uuid.uuid4().hex
        self.models: dict[str, "keras.Model"] = {}
        self.artifacts: dict[str, Any] = {}  # arrays returned by ModelRun.evaluate, as "<model>/<name>"
        self.extra: dict[str, Any] = {}  # plain data for the run's extra, made in the slot (a recipe's)
        self._fitting: "keras.Model | None" = None  # the model inside fit() right now
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._halt_reason: str | None = None
        self._epoch_capped = False
        self._thread: threading.Thread | None = None
        self._last_heartbeat = time.monotonic()
        self._started_mono: float | None = None
        self._finished_mono: float | None = None
        self._samples_before = 0  # samples of models already finished
        self._progress = JobProgress(
            job_id=self.job_id,
            label=label,
            owner=owner,
            created_at=time.time(),
            models={p.name: ModelProgress(name=p.name, unit=p.unit, epochs=min(p.epochs, budget.max_epochs),
                                          requested_epochs=p.epochs)
                    for p in planned},
        )
        for r in runs:  # planned epochs for display before the job starts
            mp = self._progress.models[r.name]
            mp.unit = r.unit
            if r.task is not None:
                continue
            try:
                plan = _plan_fit(r, budget)
            except Exception:
                continue  # reported properly by the worker
            mp.epochs, mp.requested_epochs, mp.steps = plan.epochs, plan.requested_epochs, plan.steps

    # ---- UI side ----------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the job and start its worker thread; returns at once (``QueuedJob``)."""
        self._enqueue_and_run(self._worker, f"dnn2-train-{self.job_id[:8]}")

    def stop(self) -> None:
        """Ask the job to stop: a queued job leaves the queue, a running one ends within a batch."""
        self._halt(STOP_USER)

    def heartbeat(self) -> None:
        """Called on every UI poll; a job without heartbeats for ``idle_seconds`` is abandoned."""
        self._last_heartbeat = time.monotonic()

    @property
    def done(self) -> bool:
        with self._lock:
            return self._progress.state in _FINISHED

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True if the job has finished."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.done

    def snapshot(self) -> JobProgress:
        """A deep copy of the progress with elapsed time, fraction and ETA filled in."""
        with self._lock:
            snap = copy.deepcopy(self._progress)
            started, finished = self._started_mono, self._finished_mono
        self._place_in_line(snap)
        if started is not None:
            snap.elapsed = (finished if finished is not None else time.monotonic()) - started
        snap.samples_seen = sum(mp.samples_seen for mp in snap.models.values())
        done_units, total_units = _work_units(snap.models.values())
        if snap.state == "done":
            snap.fraction = 1.0
        elif total_units > 0:
            snap.fraction = min(1.0, max(0.0, done_units / total_units))
        if snap.state == "running":
            names = list(snap.models)
            current = snap.models.get(snap.current) if snap.current else None
            eta = step_eta(current, time.time()) if current is not None else None
            if eta is not None:
                eta = min(eta, max(0.0, self.budget.max_seconds - snap.elapsed))
            snap.eta_seconds = eta
            after = names[names.index(snap.current) + 1:] if current is not None else []
            snap.steps_after = sum(1 for n in after if snap.models[n].state == "pending")
        else:
            snap.eta_seconds = 0.0 if snap.state in _FINISHED else None
        return snap

    def history_frame(self) -> "pandas.DataFrame":
        """Per-epoch history in long form (model, epoch, metric, value) for plots and CSV."""
        return history_frame(self.snapshot())

    def should_stop(self) -> str | None:
        """Why the job should stop now (Stop pressed, a budget, an abandoned tab), else None.
        Cheap: long work inside a build function polls it between batches."""
        return self._check_budget()

    # ---- worker side ------------------------------------------------------------------------

    def _halt(self, reason: str) -> None:
        """Record the first reason to stop the whole job and raise the stop flag."""
        with self._lock:
            if self._progress.state in _FINISHED:
                return
            if self._halt_reason is None:
                self._halt_reason = reason
            fitting = self._fitting
        self._stop_event.set()
        if fitting is not None:
            # Keras checks this flag after every batch: setting it here, from the caller's thread,
            # stops the run at the end of the batch in flight even though the progress callback
            # runs asynchronously.
            fitting.stop_training = True

    def _check_budget(self, extra_samples: int = 0) -> str | None:
        """Cheap check (a clock read and a few comparisons) run at every batch end."""
        if self._stop_event.is_set():
            return self._halt_reason or STOP_USER
        now = time.monotonic()
        if now - self._last_heartbeat > self.budget.idle_seconds:
            return STOP_ABANDONED
        if self._started_mono is not None and now - self._started_mono > self.budget.max_seconds:
            return STOP_TIME
        if self._samples_before + extra_samples >= self.budget.max_samples:
            return STOP_SAMPLES
        return None

    def _worker(self) -> None:
        admitted = False
        _CURRENT.job = self
        try:
            admitted = self._wait_for_slot(self._stop_event)
            if not admitted:
                self._finish("stopped")
                return
            with self._lock:
                self._started_mono = time.monotonic()
                self._progress.started_at = time.time()
                self._progress.state = "running"
                self._progress.queue_position = None
            from dnn2core.device import configure_tensorflow

            info = configure_tensorflow()
            with self._lock:
                self._progress.device = info.label
            import keras

            if self.recipe is not None:
                self._build_recipe()
            keras.utils.set_random_seed(self.seed)  # after the recipe: a base built or cached gives the same run
            for run in self.runs:
                reason = self._check_budget()
                if reason is not None:
                    self._halt(reason)
                    break
                self._train_one(run)
            self._finish("stopped" if (self._halt_reason or self._epoch_capped) else "done")
        except JobStopped as exc:
            self._halt(self._check_budget() or STOP_USER)
            with self._lock:
                self._progress.message = str(exc) or None
            self._finish("stopped")
        except BaseException as exc:  # noqa: BLE001 - a worker must never die silently
            logger.exception("Training job %s failed", self.job_id)
            with self._lock:
                self._progress.message = f"{type(exc).__name__}: {exc}"
                current = self._progress.current
                if current is not None and self._progress.models[current].state == "running":
                    self._progress.models[current].state = "failed"
            self._finish("failed")
        finally:
            _CURRENT.job = None
            self.gate.release(self.job_id)

    def _build_recipe(self) -> None:
        """Make the recipe's runs here, in the slot, reporting as the first model's phase."""
        first = next(iter(self._progress.models))
        with self._lock:
            self._progress.current = first
            self._progress.models[first].state = "running"
        self.report_phase("preparing the data", 0, 0)
        built = self.recipe.build()
        _check_runs(built.runs)
        names, planned = [r.name for r in built.runs], list(self._progress.models)
        if names != planned:
            raise ValueError(f"The recipe planned {planned} but made {names}.")
        with self._lock:
            self.runs = list(built.runs)
            self.artifacts.update(built.arrays)
            self.extra.update(built.extra)
            self._progress.models[first].phase = ""

    def _finish(self, state: str) -> None:
        with self._lock:
            self._finished_mono = time.monotonic()
            p = self._progress
            p.state = state
            p.finished_at = time.time()
            p.queue_position = None
            p.current = None
            if state == "stopped":
                p.stop_reason = self._halt_reason or (STOP_EPOCHS if self._epoch_capped else STOP_USER)
            for mp in p.models.values():
                if mp.state in ("pending", "running"):
                    mp.state = "stopped"

    def report_phase(self, phase: str, done: int, total: int, unit: str = "item") -> None:
        """Work of the current model before its fit (see ``report_phase`` at module level)."""
        with self._lock:
            name = self._progress.current
            if name is None:
                return
            mp = self._progress.models[name]
            if mp.phase != phase or mp.phase_started_at is None:
                mp.phase, mp.phase_started_at = phase, time.time()
            mp.phase_done, mp.phase_total, mp.phase_unit = int(done), int(total), unit

    def report_task(self, name: str, done: int, total: int) -> None:
        """A task's progress (e.g. 3 of 10 images attacked), shown like epochs."""
        with self._lock:
            mp = self._progress.models[name]
            mp.epoch, mp.epochs, mp.requested_epochs = int(done), int(total), int(total)

    def _run_task(self, run: ModelRun) -> None:
        with self._lock:
            self._progress.models[run.name].state = "running"
            self._progress.models[run.name].fit_started_at = time.time()
            self._progress.current = run.name
        results = dict(run.task(self, run.name) or {})
        arrays = {k: v for k, v in results.items() if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0}
        reason = self._check_budget()
        if reason is not None:
            self._halt(reason)
        with self._lock:
            for k, v in arrays.items():
                self.artifacts[f"{run.name}/{k}"] = v
            mp = self._progress.models[run.name]
            mp.results = {k: v for k, v in results.items() if k not in arrays}
            mp.state = "stopped" if self._stop_event.is_set() else "done"

    def _train_one(self, run: ModelRun) -> None:
        if run.task is not None:
            self._run_task(run)
            return
        with self._lock:
            self._progress.models[run.name].state = "running"
            self._progress.current = run.name
        if run.prepare is not None:  # before the fit's plan: it may make the fit's data (extracted features)
            run.prepare()  # outside the build lock: may take minutes (feature extraction); reports a phase
        plan = _plan_fit(run, self.budget)
        with self._lock:
            mp = self._progress.models[run.name]
            mp.epochs, mp.requested_epochs, mp.steps = plan.epochs, plan.requested_epochs, plan.steps
        if run.initial_model is not None:
            model = run.initial_model
        else:
            self.report_phase("building the model", 0, 0)
            model = build_locked(run.build)
        if model is None or not hasattr(model, "fit"):
            raise ValueError(f"{run.name}: build() must return a Keras model, got {type(model).__name__}.")
        if getattr(model, "compiled", True) is False:
            raise ValueError(f"{run.name}: build() must return a compiled model (call model.compile(...)).")
        self._set_params(run.name, model)
        if run.steps_per_execution > 1:
            model.steps_per_execution = int(min(run.steps_per_execution, plan.steps or run.steps_per_execution))
            model.train_function = model.test_function = None  # rebuilt by fit() with the new value

        kwargs = plan.kwargs
        if run.cached_data:
            kwargs = cached_datasets(kwargs, self.seed)
        extra = kwargs.get("callbacks") or []
        progress_cb = _make_progress_callback(self, run.name, plan)
        kwargs["callbacks"] = [progress_cb, *list(extra)]
        with self._lock:
            self._fitting = model
            mp = self._progress.models[run.name]
            mp.phase, mp.phase_done, mp.phase_total, mp.phase_started_at = "", 0, 0, None
            mp.fit_started_at = time.time()
        try:
            if self._stop_event.is_set():
                model.stop_training = True
            model.fit(**kwargs)
        finally:
            with self._lock:
                self._fitting = None
        self._set_params(run.name, model)

        with self._lock:
            self.models[run.name] = model
            self._samples_before += self._progress.models[run.name].samples_seen
        halted = self._stop_event.is_set()
        capped = plan.epochs < plan.requested_epochs
        if capped:
            with self._lock:
                self._epoch_capped = True
        # A learner who pressed Stop (or left) wants the slot back now, so skip evaluation;
        # after a budget stop the model is still the product, so evaluate it.
        if run.evaluate is not None and self._halt_reason not in (STOP_USER, STOP_ABANDONED):
            results = dict(run.evaluate(model) or {})
            # Arrays (test-set probabilities, forecasts) are kept for the run store's evaluation
            # tabs, apart from the progress that every poll copies.
            arrays = {k: v for k, v in results.items() if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0}
            with self._lock:
                for k, v in arrays.items():
                    self.artifacts[f"{run.name}/{k}"] = v
                self._progress.models[run.name].results = {k: v for k, v in results.items() if k not in arrays}
        with self._lock:
            self._progress.models[run.name].state = "stopped" if (halted or capped) else "done"

    # ---- progress, recorded by the Keras callback (the job owns its lock) --------------------

    def stop_requested(self) -> bool:
        return self._stop_event.is_set()

    def _record_epoch_begin(self, name: str) -> None:
        with self._lock:
            mp = self._progress.models[name]
            mp.batch = 0
            mp.batch_logs = {}

    def _record_batch(self, name: str, batches: int, samples: int, logs: dict | None, steps: int | None) -> None:
        """Two ints on every batch (cheap, and the budget test needs them exact); the running means
        only when ``logs`` is given (a few times a second: converting logs each batch slows fit)."""
        with self._lock:
            mp = self._progress.models[name]
            mp.batch = batches
            mp.samples_seen = samples
            if logs is not None:
                mp.batch_logs = {k: float(v) for k, v in logs.items()}
                if steps:
                    mp.steps = int(steps)

    def _record_validating(self, name: str, validating: bool) -> None:
        with self._lock:
            self._progress.models[name].validating = validating

    def _record_epoch(self, name: str, logs: dict, *, seconds: float, steps: int | None, partial: bool,
                      samples_done: int, validation_cut: bool) -> None:
        """Append a completed epoch to the history (every metric aligned by epoch). A partial epoch
        (stopped mid-way) keeps only its running means; a validation pass cut short is NaN."""
        with self._lock:
            mp = self._progress.models[name]
            if steps:
                mp.steps = int(steps)
            if partial:
                mp.batch_logs = {k: float(v) for k, v in logs.items() if not k.startswith("val_")}
                return
            mp.samples_seen = samples_done
            n_before = mp.epoch
            for key, value in logs.items():
                if validation_cut and key.startswith("val_"):
                    value = float("nan")  # validation was cut short: not a real measurement
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    continue
                mp.history.setdefault(key, [float("nan")] * n_before).append(value)
            for values in mp.history.values():
                if len(values) < n_before + 1:
                    values.append(float("nan"))
            mp.epoch = n_before + 1
            mp.epoch_seconds.append(seconds)
            mp.batch = 0
            mp.batch_logs = {}

    def _set_params(self, name: str, model: "keras.Model") -> None:
        try:
            params = int(model.count_params())
        except Exception:  # an unbuilt subclassed model: known after fit
            return
        with self._lock:
            self._progress.models[name].params = params


def _work_units(models: Any) -> tuple[float, float]:
    """(done, total) work in batches; falls back to epochs for models with unknown steps."""
    done = total = 0.0
    for mp in models:
        steps = mp.steps or 0
        planned = max(mp.epochs, mp.epoch)
        if steps:
            total += planned * steps
            if mp.state == "done":
                done += planned * steps
            else:
                done += mp.epoch * steps + min(mp.batch, steps)
        else:
            total += planned
            done += planned if mp.state == "done" else mp.epoch
    return done, total


def _make_progress_callback(job: TrainingJob, name: str, plan: _FitPlan) -> Any:
    """Build the Keras callback lazily (keras.callbacks.Callback needs keras imported)."""
    import keras

    class _ProgressCallback(keras.callbacks.Callback):
        """Counts batches and epochs and hands them to the job, which owns the locked progress and
        the budget; Keras' own stop flags are set here because only the callback holds the model.

        ``async_safe``: Keras may run the batch hooks in its own thread pool, so fit() never
        waits for them (a synchronous batch hook blocks every step on its result and cost the
        CNN about 19% in bench/bench_mnist.py). Stop sets ``model.stop_training`` directly
        (TrainingJob._halt), so it does not wait for a hook.
        """

        async_safe = True

        def __init__(self) -> None:
            super().__init__()
            self._last_flush = 0.0
            self._epoch_start = time.monotonic()
            self._batches = 0  # completed batches in this epoch
            self._stopped_in_epoch = False
            self._stopped_in_validation = False
            self._samples_done = 0  # samples of completed epochs

        def _samples_in_epoch(self) -> int:
            if plan.batch_size is None:
                return 0
            seen = self._batches * plan.batch_size
            if plan.samples_per_epoch is not None:
                seen = min(seen, plan.samples_per_epoch)
            return seen

        def _request_stop(self, reason: str, *, evaluating: bool) -> None:
            job._halt(reason)
            self.model.stop_training = True
            if evaluating:
                self.model.stop_evaluating = True  # Keras 3: end the validation pass too
                self._stopped_in_validation = True
            else:
                self._stopped_in_epoch = True

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch_start = time.monotonic()
            self._batches = 0
            self._stopped_in_epoch = False
            self._stopped_in_validation = False
            job._record_epoch_begin(name)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            # Keras 3 passes the step index of the last batch run (several with steps_per_execution).
            self._batches = batch + 1
            samples = self._samples_done + self._samples_in_epoch()
            now = time.monotonic()
            flush = now - self._last_flush >= PROGRESS_INTERVAL
            if flush:
                self._last_flush = now
            steps = (self.params or {}).get("steps")
            job._record_batch(name, self._batches, samples, logs if flush else None, steps)
            reason = job._check_budget(samples)
            if reason is not None:
                job._record_batch(name, self._batches, samples, logs, steps)  # the last running means
                self._request_stop(reason, evaluating=False)

        def on_test_begin(self, logs: dict | None = None) -> None:
            job._record_validating(name, True)
            # fit() still runs validation after a stop; Keras resets stop_evaluating just before
            # this hook, so setting it here limits that pass to a single batch.
            if self.model.stop_training and (self._stopped_in_epoch or job.stop_requested()):
                self.model.stop_evaluating = True
                self._stopped_in_validation = True

        def on_test_end(self, logs: dict | None = None) -> None:
            job._record_validating(name, False)

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if self.model.stop_evaluating:
                return
            reason = job._check_budget(self._samples_done + self._samples_in_epoch())
            if reason is not None:
                self._request_stop(reason, evaluating=True)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.monotonic() - self._epoch_start
            steps = (self.params or {}).get("steps")
            partial = self._stopped_in_epoch and (not steps or self._batches < steps)
            if not partial:
                if plan.samples_per_epoch is not None:
                    self._samples_done += plan.samples_per_epoch
                else:
                    self._samples_done += self._samples_in_epoch()
            job._record_epoch(name, dict(logs or {}), seconds=seconds, steps=steps, partial=partial,
                              samples_done=self._samples_done, validation_cut=self._stopped_in_validation)
            self._last_flush = 0.0

    return _ProgressCallback()
