"""Live-training machinery: the FIFO gate, budgets, stop-within-a-batch, failures, imports."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dnn2core.training import (
    STOP_ABANDONED,
    STOP_EPOCHS,
    STOP_SAMPLES,
    STOP_TIME,
    STOP_USER,
    Budget,
    JobGate,
    ModelRun,
    QueueFull,
    TrainingJob,
    default_max_jobs,
    estimate_eta,
    format_eta,
)

ROOT = Path(__file__).resolve().parents[1]


def _wait_for(predicate, timeout: float = 30.0, interval: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# ---------------------------------------------------------------- gate (no TensorFlow) -------


def test_gate_fifo_positions_stop_queuefull_and_idempotent_release():
    gate = JobGate(max_running=2, max_waiting=3)
    stops = {f"j{i}": threading.Event() for i in range(5)}
    results: dict[str, bool] = {}

    def take(job_id: str) -> None:
        results[job_id] = gate.acquire(job_id, stops[job_id], poll=0.01)

    threads = []
    for i in range(5):  # start one by one so the arrival order is known
        t = threading.Thread(target=take, args=(f"j{i}",), daemon=True)
        t.start()
        threads.append(t)
        assert _wait_for(lambda i=i: f"j{i}" in gate.running() + gate.waiting(), 5)

    assert gate.running() == ["j0", "j1"]
    assert gate.waiting() == ["j2", "j3", "j4"]
    assert [gate.position(f"j{i}") for i in range(5)] == [None, None, 1, 2, 3]
    assert gate.position("unknown") is None

    with pytest.raises(QueueFull, match="busy"):  # 3 waiting is the limit
        gate.acquire("j5", threading.Event(), poll=0.01)
    assert isinstance(QueueFull("x"), ValueError)

    gate.release("j0")  # the first waiter, not any waiter, gets the slot
    assert _wait_for(lambda: "j2" in gate.running(), 5)
    threads[2].join(5)
    assert results["j2"] is True
    assert sorted(gate.running()) == ["j1", "j2"]
    assert gate.waiting() == ["j3", "j4"]
    assert gate.position("j4") == 2

    stops["j3"].set()  # a waiter that gives up leaves the queue
    threads[3].join(5)
    assert results["j3"] is False
    assert gate.waiting() == ["j4"] and gate.position("j4") == 1

    gate.release("j1")
    gate.release("j1")  # idempotent: does not free a second slot
    threads[4].join(5)
    assert results["j4"] is True
    assert sorted(gate.running()) == ["j2", "j4"]
    gate.release("j2"), gate.release("j4"), gate.release("never-seen")
    assert gate.running() == [] and gate.waiting() == []


def test_gate_validation_and_small_helpers(monkeypatch):
    with pytest.raises(ValueError, match="max_running"):
        JobGate(0)
    with pytest.raises(ValueError, match="max_waiting"):
        JobGate(1, max_waiting=-1)
    gate = JobGate(1, max_waiting=0)  # no waiting room: a free slot is still taken at once
    assert gate.acquire("a", threading.Event()) is True
    with pytest.raises(QueueFull):
        gate.enqueue("b")
    with pytest.raises(ValueError, match="idle_seconds"):
        Budget(idle_seconds=0)

    monkeypatch.setenv("DNN2_MAX_JOBS", "3")
    assert default_max_jobs() == 3
    monkeypatch.setenv("DNN2_MAX_JOBS", "zero")
    with pytest.raises(ValueError, match="DNN2_MAX_JOBS"):
        default_max_jobs()
    monkeypatch.delenv("DNN2_MAX_JOBS")
    import dnn2core.training as training
    from dnn2core.device import cpu_cores

    monkeypatch.setattr(training, "_visible_gpus", lambda: 2)  # one job per GPU
    assert default_max_jobs() == 2
    monkeypatch.setattr(training, "_visible_gpus", lambda: 0)  # CPU: cores // 4, at least 1
    assert default_max_jobs() == max(1, cpu_cores() // 4)

    assert format_eta(None) == "estimating…"
    assert format_eta(0.2) == "< 1 s"
    assert format_eta(42) == "42 s"
    assert format_eta(65) == "1 min 05 s"
    assert format_eta(3720) == "1 h 02 min"
    assert estimate_eta(0, 10, 5.0) is None
    assert estimate_eta(2, 10, 4.0) == pytest.approx(16.0)


def test_importing_training_loads_neither_tensorflow_nor_streamlit():
    code = (
        "import sys, dnn2core.training\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'streamlit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------- jobs (tiny Keras models) ---


def _data(n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return x, y


def _builder(units: int = 8):
    def build():
        import keras
        from keras import layers

        model = keras.Sequential([keras.Input((4,)), layers.Dense(units, activation="relu"),
                                  layers.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    return build


def _long_run(name: str = "Long", epochs: int = 1000, n: int = 2000, batch_size: int = 1) -> ModelRun:
    x, y = _data(n)
    return ModelRun(name, _builder(), dict(x=x, y=y, epochs=epochs, batch_size=batch_size))


@pytest.mark.timeout(120)
def test_two_models_train_to_completion_with_history_results_and_frame():
    x, y = _data(64)
    xv, yv = _data(32, seed=1)

    def evaluate(model):
        loss, acc = model.evaluate(xv, yv, verbose=0)
        return {"test_accuracy": float(acc)}

    fit = dict(x=x, y=y, epochs=3, batch_size=16, validation_data=(xv, yv))
    runs = [ModelRun("Dense", _builder(8), dict(fit), evaluate=evaluate),
            ModelRun("Wide", _builder(16), dict(fit), evaluate=evaluate)]
    job = TrainingJob(runs, gate=JobGate(1), seed=1, owner="alice", label="compare")
    assert job.snapshot().state == "queued"
    job.start()
    assert job.join(90)
    snap = job.snapshot()
    assert snap.state == "done" and snap.stop_reason is None and snap.message is None
    assert snap.fraction == 1.0 and snap.eta_seconds == 0.0 and snap.elapsed > 0
    assert snap.owner == "alice" and snap.label == "compare" and snap.device.startswith(("CPU", "GPU"))
    assert snap.finished_at >= snap.started_at >= snap.created_at
    assert list(snap.models) == ["Dense", "Wide"]
    for name, units in (("Dense", 8), ("Wide", 16)):
        mp = snap.models[name]
        assert mp.state == "done" and mp.epoch == 3 and mp.epochs == 3 and mp.steps == 4
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert len(mp.history[key]) == 3 and all(np.isfinite(mp.history[key]))
        assert len(mp.epoch_seconds) == 3 and all(s > 0 for s in mp.epoch_seconds)
        assert mp.samples_seen == 3 * 64
        assert mp.params == 4 * units + units + units * 2 + 2
        assert 0.0 <= mp.results["test_accuracy"] <= 1.0
    assert snap.samples_seen == 2 * 3 * 64
    assert set(job.models) == {"Dense", "Wide"}
    assert job.models["Wide"].count_params() == snap.models["Wide"].params
    # the stored results are the evaluation of the returned model
    _, acc = job.models["Dense"].evaluate(xv, yv, verbose=0)
    assert snap.models["Dense"].results["test_accuracy"] == pytest.approx(acc)

    frame = job.history_frame()
    assert list(frame.columns) == ["model", "epoch", "metric", "value"]
    n_metrics = len(snap.models["Dense"].history)
    assert len(frame) == 2 * 3 * n_metrics
    dense_loss = frame[(frame.model == "Dense") & (frame.metric == "loss")]
    assert dense_loss.epoch.tolist() == [1, 2, 3]
    assert dense_loss.value.tolist() == pytest.approx(snap.models["Dense"].history["loss"])
    assert job.gate.running() == []


@pytest.mark.timeout(120)
def test_stop_ends_within_one_batch_and_keeps_history():
    x, y = _data(2000)
    run = ModelRun("Slow", _builder(), dict(x=x, y=y, epochs=50, batch_size=1))
    job = TrainingJob([run], gate=JobGate(1), budget=Budget(max_epochs=50))
    job.start()
    # one full epoch first (so there is history to keep), then stop in the middle of epoch 2
    assert _wait_for(lambda: job.snapshot().models["Slow"].epoch >= 1
                     and job.snapshot().models["Slow"].batch >= 30, 90)
    job.stop()
    at_stop = job.snapshot().models["Slow"]
    t0 = time.monotonic()
    assert job.join(10)
    assert time.monotonic() - t0 < 5
    snap = job.snapshot()
    final = snap.models["Slow"]
    assert snap.state == "stopped" and snap.stop_reason == STOP_USER
    assert final.state == "stopped"
    assert final.samples_seen - at_stop.samples_seen <= 1  # batch size 1: samples == batches
    assert final.epoch == at_stop.epoch >= 1  # the partial epoch is not in the history
    assert len(final.history["loss"]) == final.epoch and len(final.epoch_seconds) == final.epoch
    assert "Slow" in job.models
    assert job.gate.running() == []
    assert 0 < snap.fraction < 1


@pytest.mark.timeout(120)
def test_stop_skips_the_long_validation_pass_after_the_stop():
    x, y = _data(2000)
    xv, yv = _data(30000, seed=1)  # a full validation pass at batch size 1 would take many seconds
    run = ModelRun("M", _builder(), dict(x=x, y=y, epochs=5, batch_size=1,
                                         validation_data=(xv, yv), validation_batch_size=1))
    job = TrainingJob([run], gate=JobGate(1))
    job.start()
    assert _wait_for(lambda: job.snapshot().models["M"].batch >= 20, 60)
    job.stop()
    t0 = time.monotonic()
    assert job.join(10)
    assert time.monotonic() - t0 < 3
    mp = job.snapshot().models["M"]
    assert mp.state == "stopped" and mp.epoch == 0 and mp.history == {}
    assert "loss" in mp.batch_logs  # the running means up to the stop stay visible


@pytest.mark.timeout(120)
def test_stop_during_validation_keeps_the_epoch_but_not_its_cut_validation():
    x, y = _data(32)
    xv, yv = _data(30000, seed=1)
    run = ModelRun("M", _builder(), dict(x=x, y=y, epochs=5, batch_size=32,
                                         validation_data=(xv, yv), validation_batch_size=1))
    job = TrainingJob([run], gate=JobGate(1))
    job.start()
    assert _wait_for(lambda: job.snapshot().models["M"].validating, 60)
    job.stop()
    t0 = time.monotonic()
    assert job.join(10)
    assert time.monotonic() - t0 < 3
    mp = job.snapshot().models["M"]
    assert mp.epoch == 1 and not mp.validating
    assert np.isfinite(mp.history["loss"][0]) and np.isnan(mp.history["val_loss"][0])
    frame = job.history_frame()
    assert set(frame.metric) == {"loss", "accuracy"}  # cut validation is not reported


@pytest.mark.timeout(120)
def test_epoch_budget_caps_and_continues_with_next_model():
    x, y = _data(64)
    runs = [ModelRun(n, _builder(), dict(x=x, y=y, epochs=10, batch_size=32)) for n in ("A", "B")]
    job = TrainingJob(runs, gate=JobGate(1), budget=Budget(max_epochs=2))
    assert job.snapshot().models["A"].epochs == 2  # planned epochs shown before the start
    job.start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.stop_reason == STOP_EPOCHS
    for name in ("A", "B"):
        mp = snap.models[name]
        assert mp.epoch == 2 and len(mp.history["loss"]) == 2 and mp.requested_epochs == 10
    assert set(job.models) == {"A", "B"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("budget", "heartbeat", "reason"),
    [
        (Budget(max_epochs=1000, idle_seconds=0.5), False, STOP_ABANDONED),
        (Budget(max_epochs=1000, max_seconds=1.0), True, STOP_TIME),
        (Budget(max_epochs=1000, max_samples=150), True, STOP_SAMPLES),
    ],
    ids=["idle", "time", "samples"],
)
def test_budgets_stop_the_job_with_the_right_reason(budget, heartbeat, reason):
    runs = [_long_run("First"), _long_run("Second")]
    job = TrainingJob(runs, gate=JobGate(1), budget=budget)
    job.start()
    t0 = time.monotonic()
    while not job.done and time.monotonic() - t0 < 60:
        if heartbeat:
            job.heartbeat()
        time.sleep(0.05)
    assert job.join(10)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.stop_reason == reason
    assert snap.models["First"].state == "stopped"
    assert snap.models["Second"].state == "stopped" and snap.models["Second"].epoch == 0
    assert "Second" not in job.models  # the whole job halts, later models never start
    if reason == STOP_SAMPLES:
        assert snap.models["First"].samples_seen == 150  # batch size 1: stops exactly on budget
    if reason == STOP_TIME:
        assert 1.0 <= snap.elapsed < 10


@pytest.mark.timeout(120)
def test_gate_queues_the_second_job_until_the_first_finishes():
    gate = JobGate(1)
    x, y = _data(64)
    first = TrainingJob([ModelRun("M", _builder(), dict(x=x, y=y, epochs=20, batch_size=1))], gate=gate)
    second = TrainingJob([ModelRun("M", _builder(), dict(x=x, y=y, epochs=2, batch_size=32))], gate=gate)
    first.start()
    assert _wait_for(lambda: first.snapshot().models["M"].batch >= 1, 60)
    second.start()
    time.sleep(0.3)
    snap = second.snapshot()
    assert first.snapshot().state == "running"
    assert snap.state == "queued" and snap.queue_position == 1 and snap.started_at is None
    assert gate.running() == [first.job_id] and gate.waiting() == [second.job_id]
    assert first.join(90) and second.join(60)
    a, b = first.snapshot(), second.snapshot()
    assert a.state == "done" and b.state == "done"
    assert b.started_at >= a.finished_at  # never trained at the same time
    assert b.queue_position is None and b.models["M"].epoch == 2
    assert gate.running() == [] and gate.waiting() == []


@pytest.mark.timeout(60)
def test_queued_job_stopped_leaves_queue():
    gate = JobGate(1)
    holder_stop = threading.Event()
    assert gate.acquire("holder", holder_stop)
    job = TrainingJob([_long_run()], gate=gate)
    job.start()
    assert _wait_for(lambda: job.snapshot().queue_position == 1, 5)
    job.stop()
    assert job.join(5)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.stop_reason == STOP_USER and snap.started_at is None
    assert gate.waiting() == []
    gate.release("holder")


@pytest.mark.timeout(120)
def test_failing_build_marks_failed_and_releases_the_slot():
    def broken_build():
        raise RuntimeError("no such layer: Dense42")

    x, y = _data(64)
    gate = JobGate(1)
    job = TrainingJob([ModelRun("Broken", broken_build, dict(x=x, y=y, epochs=1)),
                       ModelRun("Never", _builder(), dict(x=x, y=y, epochs=1))], gate=gate)
    job.start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "failed"
    assert "RuntimeError" in snap.message and "no such layer: Dense42" in snap.message
    assert snap.models["Broken"].state == "failed" and snap.models["Never"].state == "stopped"
    assert gate.running() == [] and gate.waiting() == []
    assert job.models == {}
    # the slot is free again: the next job is admitted at once
    assert gate.acquire("next", threading.Event())
    gate.release("next")


def test_queue_full_is_raised_by_start():
    gate = JobGate(1, max_waiting=0)
    assert gate.acquire("holder", threading.Event())
    job = TrainingJob([_long_run()], gate=gate)
    with pytest.raises(QueueFull):
        job.start()
    assert job.snapshot().state == "failed" and "busy" in job.snapshot().message
    gate.release("holder")


def test_invalid_runs_are_rejected():
    with pytest.raises(ValueError, match="at least one"):
        TrainingJob([], gate=JobGate(1))
    with pytest.raises(ValueError, match="unique"):
        TrainingJob([ModelRun("A", _builder(), {}), ModelRun("A", _builder(), {})], gate=JobGate(1))


@pytest.mark.timeout(120)
def test_job_stopped_from_long_work_in_a_build_ends_as_stopped():
    """Long work inside build (feature extraction) polls should_stop() and raises JobStopped."""
    import threading as _threading

    from dnn2core.training import JobGate, JobStopped, ModelRun, TrainingJob

    started = _threading.Event()

    def slow_build():
        started.set()
        while True:
            time.sleep(0.05)
            if job.should_stop():
                raise JobStopped("Stopped during feature extraction; nothing was cached.")

    job = TrainingJob([ModelRun("Head", slow_build, {})], gate=JobGate(1))
    job.start()
    assert started.wait(60)
    job.stop()
    assert job.join(30)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.stop_reason == "stopped by you"
    assert "feature extraction" in snap.message
    assert job.gate.running() == []


def test_steps_per_execution_keeps_the_same_updates():
    """Several batches per Python step only removes overhead: same seed, same batches, same weights."""
    import keras

    from dnn2core.training import JobGate, ModelRun, TrainingJob

    rng = np.random.default_rng(0)
    x = rng.normal(size=(640, 20)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)

    def build():
        model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    results = []
    for spe in (1, 8):
        job = TrainingJob([ModelRun("m", build, dict(x=x, y=y, epochs=3, batch_size=32, validation_split=0.25,
                                                     shuffle=True), steps_per_execution=spe)],
                          gate=JobGate(1), seed=7)
        job.start()
        assert job.join(120) and job.snapshot().state == "done"
        mp = job.snapshot().models["m"]
        assert mp.epoch == 3 and mp.batch == 0 and mp.samples_seen == 3 * 480
        results.append((mp.history, job.models["m"].get_weights()))
    (h1, w1), (h8, w8) = results
    assert np.allclose(h1["loss"], h8["loss"], rtol=1e-5) and np.allclose(h1["val_loss"], h8["val_loss"], rtol=1e-5)
    for a, b in zip(w1, w8):
        assert np.allclose(a, b, atol=1e-5)


def test_prepare_runs_outside_the_build_lock_and_tasks_take_a_gate_slot():
    """Feature extraction (a run's prepare) must not block other learners' builds; a task (a batch of
    attacks) trains nothing but queues and reports like a training."""
    import keras

    from dnn2core.training import BUILD_LOCK, JobGate, ModelRun, TrainingJob

    seen = {}

    def prepare():
        seen["prepare"] = BUILD_LOCK.locked()

    def build():
        seen["build"] = BUILD_LOCK.locked()
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    def task(job, name):
        for i in range(4):
            job.report_task(name, i + 1, 4)
        return {"answer": 42.0, "curve": np.arange(3.0)}

    x = np.zeros((8, 3), np.float32)
    job = TrainingJob([ModelRun("net", build, dict(x=x, y=x[:, :1], epochs=1), prepare=prepare),
                       ModelRun("attack", None, {}, task=task, unit="image")], gate=JobGate(1))
    job.start()
    assert job.join(60) and job.snapshot().state == "done"
    assert seen == {"prepare": False, "build": True}
    mp = job.snapshot().models["attack"]
    assert (mp.epoch, mp.epochs, mp.unit, mp.results) == (4, 4, "image", {"answer": 42.0})
    assert np.array_equal(job.artifacts["attack/curve"], np.arange(3.0))


def test_cached_datasets_feed_every_row_once_per_epoch_reshuffled_from_the_seed():
    import numpy as np

    from dnn2core.training import cached_datasets

    x = np.arange(100, dtype=np.float64).reshape(50, 2)
    y = np.arange(50, dtype=np.float64)
    kw = cached_datasets(dict(x=x, y=y, batch_size=8, epochs=3, shuffle=True, validation_data=(x[:10], y[:10])), 7)
    assert set(kw) == {"x", "epochs", "validation_data", "shuffle"} and kw["shuffle"] is False
    epochs = [[b[1].numpy() for b in kw["x"]] for _ in range(2)]
    assert [len(b) for b in epochs[0]] == [8] * 6 + [2]  # the batch size of the course's fit
    first, second = (np.concatenate(e) for e in epochs)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))  # every row once
    assert not np.array_equal(first, second)  # reshuffled each epoch
    assert epochs[0][0].dtype == np.float32  # as Keras' NumPy adapter casts float64
    again = cached_datasets(dict(x=x, y=y, batch_size=8, shuffle=True), 7)
    assert np.array_equal(np.concatenate([b[1].numpy() for b in again["x"]]), first)  # seeded
    val = np.concatenate([b[1].numpy() for b in kw["validation_data"]])
    assert list(val) == list(range(10))
    # what it cannot cover is left to Keras
    plain = dict(x=x, y=y, validation_split=0.2)
    assert cached_datasets(plain, 1) is plain


def test_each_step_has_its_own_eta_so_a_slow_step_after_a_fast_one_is_not_promised_in_a_second():
    from dnn2core.training import ModelProgress, step_eta

    now = 1000.0
    head = ModelProgress("head", state="done", epoch=5, epochs=5, steps=10, fit_started_at=now - 1.0)
    finetune = ModelProgress("fine-tuned", state="running", epoch=0, epochs=2, steps=10, batch=2,
                             fit_started_at=now - 10.0)  # 2 of 20 batches in 10 s: 90 s to go
    assert step_eta(finetune, now) == pytest.approx(90.0)
    assert step_eta(ModelProgress("x", state="running", epochs=3, steps=10), now) is None  # nothing measured yet
    extracting = ModelProgress("frozen", state="running", epochs=5, phase="extracting VGG16 features",
                               phase_done=500, phase_total=2000, phase_started_at=now - 25.0)
    assert step_eta(extracting, now) == pytest.approx(75.0)  # 500 images in 25 s, 1,500 to go
    assert step_eta(ModelProgress("frozen", phase="building the model", phase_started_at=now), now) is None
    assert head.state == "done"


def test_a_prepare_step_reports_its_phase_and_later_models_are_counted_not_guessed():
    from dnn2core.training import report_phase, stop_requested_now

    seen, release = [], threading.Event()

    def prepare():
        for i in range(0, 101, 50):
            report_phase("extracting features", i, 100, unit="image")
        seen.append(stop_requested_now())
        release.wait(10)

    def build():
        import keras

        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    x = np.zeros((8, 2), np.float32)
    runs = [ModelRun("a", build, dict(x=x, y=x[:, :1], epochs=1), prepare=prepare),
            ModelRun("b", build, dict(x=x, y=x[:, :1], epochs=1))]
    job = TrainingJob(runs, gate=JobGate(1))
    job.start()
    assert _wait_for(lambda: job.snapshot().models["a"].phase_done == 100, 30)
    snap = job.snapshot()
    mp = snap.models["a"]
    assert (mp.phase, mp.phase_total, mp.phase_unit) == ("extracting features", 100, "image")
    assert snap.steps_after == 1 and snap.eta_seconds is not None  # "ETA … for this step, then 1 more model"
    release.set()
    assert job.join(60) and job.snapshot().state == "done"
    assert seen == [False]
    done = job.snapshot().models["a"]
    assert done.phase == "" and done.fit_started_at is not None
    report_phase("outside a job", 1, 2)  # a no-op, not an error


def test_a_continued_models_curve_starts_after_the_one_it_continues():
    import pandas as pd

    from dnn2core.catsdogs import continued_runs
    from dnn2core.training import continue_epochs

    history = pd.DataFrame({"model": ["VGG16 frozen"] * 3 + ["VGG16 fine-tuned"] * 2, "epoch": [1, 2, 3, 1, 2],
                            "metric": "loss", "value": [0.5, 0.4, 0.3, 0.25, 0.2]})
    names = ["From scratch", "VGG16 frozen", "VGG16 fine-tuned", "Course full run · VGG16 frozen",
             "Course full run · VGG16 fine-tuned", "MobileNetV2 frozen"]
    assert continued_runs(names) == {"VGG16 fine-tuned": "VGG16 frozen",
                                     "Course full run · VGG16 fine-tuned": "Course full run · VGG16 frozen"}
    out = continue_epochs(history, continued_runs(history["model"].unique()))
    assert out.loc[out["model"] == "VGG16 fine-tuned", "epoch"].tolist() == [4, 5]
    assert out.loc[out["model"] == "VGG16 frozen", "epoch"].tolist() == [1, 2, 3]
    assert history["epoch"].tolist() == [1, 2, 3, 1, 2]  # the input is not changed
