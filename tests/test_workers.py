"""Training in worker processes: the run is trained, stopped and stored by another process, a killed
worker leaves its run interrupted and the next job still runs, and a worker is recycled."""

from __future__ import annotations

import os
import pickle
import signal
import time
from dataclasses import replace

import numpy as np
import pytest

from dnn2core import data, experiments
from dnn2core.jobs import JobRegistry
from dnn2core.runs import RunSpec, RunStore
from dnn2core.training import Budget, JobGate, ModelRun, TrainingJob
from dnn2core.workers import RemoteJob, WorkerPool, default_workers, worker_limits, worker_nice


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist().data


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(1, max_jobs=100, nice=5)
    yield p
    p.close()


def _settings(seed: int, epochs: int = 2, n: int = 1000, model: str = "Dense") -> dict:
    return experiments.mnist_settings(models=[model], api="sequential", epochs=epochs, batch=32, opt="adam", lr=0.001,
                                      n=n, val=0.1, seed=seed)


def _start(reg: JobRegistry, mnist, settings: dict, budget: Budget | None = None):
    spec = RunSpec("mnist", settings, data="test", version=experiments.MNIST_VERSION)
    view, started = reg.start(spec, lambda: experiments.mnist_runs(mnist, settings),
                              budget=budget or experiments.mnist_budget(), seed=settings["seed"], label="t",
                              session="learner")
    assert started
    return spec.key, view


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_job_trains_in_a_worker_and_matches_the_same_run_in_a_thread(tmp_path, mnist, pool):
    reg = JobRegistry(RunStore(tmp_path / "w"), JobGate(1), pool=pool)
    key, view = _start(reg, mnist, _settings(5))
    assert isinstance(view.job, RemoteJob)
    record = reg.wait(key, 180)
    _wait_for(lambda: view.job.done, 10)  # the store says done first, then the worker's last message arrives
    assert record.state == "done" and view.job.stored
    assert view.job.worker_pid not in (None, os.getpid())  # fit() ran in another process
    # ... at a lower priority than this (web) process, so pages answer first
    assert os.getpriority(os.PRIO_PROCESS, view.job.worker_pid) == os.getpriority(os.PRIO_PROCESS, 0) + pool.nice
    assert record.metrics["Dense"]["params"] == 50_890 and record.metrics["Dense"]["epochs"] == 2
    assert reg.view(key).models["Dense"].count_params() == 50_890  # the worker stored the model
    assert reg.view(key).artifacts()["Dense/test_probs"].shape[1] == 10
    # the same settings and seed trained in a thread of this process give the course's numbers too
    local = JobRegistry(RunStore(tmp_path / "t"), JobGate(1))
    key_t, view_t = _start(local, mnist, _settings(5))
    assert isinstance(view_t.job, TrainingJob)
    rec_t = local.wait(key_t, 180)
    assert rec_t.state == "done"
    assert rec_t.metrics["Dense"]["test_accuracy"] == pytest.approx(record.metrics["Dense"]["test_accuracy"],
                                                                     abs=0.02)
    assert record.metrics["Dense"]["test_accuracy"] > 0.8  # 1,000 digits, 2 epochs


def test_an_mnist_job_sends_its_settings_and_the_worker_prepares_the_digits(tmp_path, mnist, pool):
    """A Start pickles a few hundred bytes, not megabytes of digits: the worker loads MNIST once and makes
    exactly the runs the page's settings name (the same digits, in the same order)."""
    settings = _settings(7, model="CNN")
    loaded, fingerprint = experiments.mnist_here(str(data.data_dir()))
    recipe = experiments.MnistRecipe(settings, fingerprint)
    assert len(pickle.dumps(recipe)) < 2_000
    assert len(pickle.dumps(experiments.mnist_runs(mnist, settings))) > 5_000_000  # what a Start used to send
    assert [(p.name, p.epochs) for p in recipe.planned()] == [("CNN", 2)]
    made, direct = recipe.build().runs, experiments.mnist_runs(mnist, settings)
    assert [r.name for r in made] == ["CNN"] and made[0].steps_per_execution == direct[0].steps_per_execution
    np.testing.assert_array_equal(made[0].fit_kwargs["x"], direct[0].fit_kwargs["x"])
    np.testing.assert_array_equal(made[0].fit_kwargs["y"], direct[0].fit_kwargs["y"])
    assert experiments.mnist_here(str(data.data_dir()))[0] is loaded  # loaded once per process
    with pytest.raises(ValueError, match="other MNIST digits"):
        experiments.MnistRecipe(settings, "another-fingerprint").build()
    # through a worker: nothing but the recipe crosses, and the run is the course's CNN
    reg = JobRegistry(RunStore(tmp_path / "w"), JobGate(1), pool=pool)
    spec = RunSpec("mnist", settings, data=fingerprint, version=experiments.MNIST_VERSION)
    view, _ = reg.start(spec, lambda: recipe, budget=experiments.mnist_budget(), seed=7, label="t", session="s")
    assert isinstance(view.job, RemoteJob) and len(view.job._payload) < 2_000
    record = reg.wait(spec.key, 180)
    assert record.state == "done" and record.metrics["CNN"]["params"] == 104_202
    assert record.metrics["CNN"]["test_accuracy"] > 0.8  # 1,000 digits, 2 epochs


def test_stop_reaches_the_worker_and_the_history_is_kept(tmp_path, mnist, pool):
    reg = JobRegistry(RunStore(tmp_path), JobGate(1), pool=pool)
    key, view = _start(reg, mnist, _settings(6, epochs=200, n=2000))
    _wait_for(lambda: view.job.snapshot().models["Dense"].epoch >= 2)
    reg.stop(key)
    record = reg.wait(key, 60)
    assert record.state == "stopped"
    assert 2 <= record.metrics["Dense"]["epochs"] < 200
    assert len(reg.view(key).snapshot().models["Dense"].history["loss"]) == record.metrics["Dense"]["epochs"]


def test_a_killed_worker_leaves_its_run_interrupted_and_the_next_job_runs(tmp_path, mnist):
    pool = WorkerPool(1)
    try:
        reg = JobRegistry(RunStore(tmp_path), JobGate(1), pool=pool)
        key, view = _start(reg, mnist, _settings(7, epochs=200, n=2000))
        _wait_for(lambda: view.job.snapshot().models["Dense"].epoch >= 1)
        killed = view.job.worker_pid
        os.kill(killed, signal.SIGKILL)
        record = reg.wait(key, 60)
        assert record.state == "interrupted"
        assert "worker stopped unexpectedly" in record.message
        # the server goes on: the next job trains on a fresh worker
        key2, view2 = _start(reg, mnist, _settings(8, epochs=1, n=500))
        assert reg.wait(key2, 180).state == "done"
        assert view2.job.worker_pid != killed
    finally:
        pool.close()


def test_a_worker_is_replaced_after_its_job_limit(tmp_path, mnist):
    pool = WorkerPool(1, max_jobs=1)
    try:
        reg = JobRegistry(RunStore(tmp_path), JobGate(1), pool=pool)
        pids = []
        for seed in (9, 10):
            key, view = _start(reg, mnist, _settings(seed, epochs=1, n=300))
            assert reg.wait(key, 180).state == "done"
            pids.append(view.job.worker_pid)
        # the second job ran on the replacement; that one retires too (a third may be starting already)
        assert pids[0] != pids[1] and pool.started in (2, 3)
    finally:
        pool.close()


def test_runs_that_cannot_be_pickled_train_in_a_thread(tmp_path, pool):
    import keras

    def build():  # a local function: a worker could not import it
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        return model

    import numpy as np

    runs = [ModelRun("m", build, dict(x=np.zeros((8, 3), "float32"), y=np.zeros(8, "float32"), epochs=1))]
    with pytest.raises((AttributeError, pickle.PicklingError)):
        pickle.dumps(runs)
    reg = JobRegistry(RunStore(tmp_path), JobGate(1), pool=pool)
    spec = RunSpec("tricks", {"seed": 1}, data="x", version=1)
    view, _ = reg.start(spec, lambda: runs, budget=Budget(), seed=1, label="t", session="s")
    assert isinstance(view.job, TrainingJob)
    assert reg.wait(spec.key, 60).state == "done"


def test_each_training_page_sends_its_runs_to_a_worker(mnist):
    """The runs of MNIST, house prices, forecasting and the tricks pickle: they train out of the web process."""
    from dnn2core import forecasting as fc
    from dnn2core import regression as reg_mod

    for model in ("Dense", "CNN"):
        assert pickle.loads(pickle.dumps(experiments.mnist_runs(mnist, _settings(1, model=model))))[0].name == model
    house = experiments.housing_settings(epochs=5, batch=32, seed=1, noid=True, std=True, log=True, stop=True,
                                         patience=5)
    prep = experiments.housing_prepare(reg_mod.load_ames().data, house)[2]
    assert pickle.loads(pickle.dumps(experiments.housing_runs(prep, house)))[0].name == "Network"
    traffic = experiments.sequences_settings(gap=3, policy="longest", agg="mean", hours=2000, h=6, layout="course",
                                             extras=[], models=["Dense", "SimpleRNN", "LSTM"], epochs=2, seed=1)
    series = experiments.sequences_series(fc.load_traffic().data, traffic)
    runs = experiments.sequences_runs(experiments.sequences_prepare(series, traffic), traffic)
    assert [r.name for r in pickle.loads(pickle.dumps(runs))] == ["Dense", "SimpleRNN", "LSTM"]
    # the tricks of the trade: every trick's runs, early stopping's callback and evaluation included
    from dnn2core import hierarchy
    from dnn2core import tricks as tr

    d = tr.digit_data(mnist, 200, 100, 0)
    tricks = [tr.shuffling_runs(d, epochs=1, batch_size=32, with_keras_shuffle=True),
              tr.early_stopping_runs(d, max_epochs=3, patience=1),
              tr.prior_runs(tr.prior_setup(d, 3, 0.1), d, epochs=1),
              hierarchy.hierarchy_runs(d, [[0, 6], [1, 7], [2, 3, 4, 5, 8, 9]], epochs=1, hidden=16,
                                       learning_rate=1e-3, batch_size=32)]
    for runs in tricks:
        back = pickle.loads(pickle.dumps(runs))
        assert [r.name for r in back] == [r.name for r in runs]
    stop = pickle.loads(pickle.dumps(tricks[1]))[0]
    assert stop.fit_kwargs["callbacks"][0].patience == 1 and stop.evaluate.func.__name__ == "_final_validation"


def test_worker_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DNN2_WORKERS", "3")
    monkeypatch.setenv("DNN2_WORKER_MAX_JOBS", "7")
    monkeypatch.setenv("DNN2_WORKER_MAX_MB", "1500")
    assert default_workers() == 3 and worker_limits() == (7, 1500.0)
    assert worker_nice() == 10
    monkeypatch.setenv("DNN2_WORKER_NICE", "0")
    assert worker_nice() == 0
    monkeypatch.setenv("DNN2_WORKERS", "0")  # threads in the web process
    assert default_workers() == 0
    monkeypatch.setenv("DNN2_WORKERS", "two")
    with pytest.raises(ValueError, match="DNN2_WORKERS"):
        default_workers()
    monkeypatch.delenv("DNN2_WORKERS")
    monkeypatch.setenv("DNN2_MAX_JOBS", "2")
    assert default_workers() == 2  # one worker per training slot


def test_a_run_that_cannot_be_stored_is_retried_then_failed_not_left_running(tmp_path, monkeypatch):
    import numpy as np

    from dnn2core import jobs

    calls = []
    real = jobs.persist_job

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise TypeError("Operation not defined for data type class")  # h5py, once, under load
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "persist_job", flaky)
    x, y = np.zeros((64, 784), "float32"), np.zeros(64, "int64")
    runs = [ModelRun("Dense", partial_dense(), dict(x=x, y=y, epochs=1, batch_size=32))]
    reg = JobRegistry(RunStore(tmp_path / "a"), JobGate(1))
    spec = RunSpec("mnist", {"seed": 2}, data="x", version=1)
    reg.start(spec, lambda: runs, budget=Budget(), seed=2, label="t", session="s")
    assert reg.wait(spec.key, 60).state == "done" and len(calls) == 2  # the second attempt stored it

    monkeypatch.setattr(jobs, "persist_job", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    reg2 = JobRegistry(RunStore(tmp_path / "b"), JobGate(1))
    reg2.start(spec, lambda: [ModelRun("Dense", partial_dense(), dict(x=x, y=y, epochs=1, batch_size=32))],
               budget=Budget(), seed=2, label="t", session="s")
    record = reg2.wait(spec.key, 60)
    assert record.state == "failed" and "could not be stored: OSError: disk full" in record.message


def partial_dense():
    from functools import partial

    from dnn2core import models

    return partial(models.build_mnist_dense, "sequential", "adam", 0.001)


@pytest.mark.parametrize("kind", ["worker", "thread"])
def test_a_job_abandoned_in_the_queue_leaves_it_and_says_why(mnist, pool, kind):
    """One queue wait for both kinds of job (``training.QueuedJob``): a learner who closed the tab
    while waiting frees their place, and the run says it was abandoned, not stopped by them."""
    import threading

    gate = JobGate(1)
    gate.enqueue("someone else")
    assert gate.acquire("someone else", threading.Event())  # the only slot is busy
    budget = Budget(idle_seconds=0.4)
    runs = experiments.mnist_runs(mnist, _settings(11, epochs=1, n=500))
    if kind == "worker":
        job = RemoteJob(runs, pool=pool, gate=gate, budget=budget, seed=11, session="s", label="t", key="k-w",
                        owner="o", store_path="unused", store_max_bytes=0)
    else:
        job = TrainingJob(runs, gate=gate, budget=budget, seed=11, owner="s", label="t", job_id="k-t")
    job.start()
    assert job.snapshot().state == "queued" and job.snapshot().queue_position == 1
    _wait_for(lambda: job.done, 10)  # nobody calls heartbeat()
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.stop_reason == "abandoned (no heartbeat)"
    assert snap.queue_position is None and gate.waiting() == []
    assert gate.running() == ["someone else"]  # the job never took a slot
    gate.release("someone else")


def test_cats_vs_dogs_trains_in_a_worker_and_its_features_are_cached_on_disk(tmp_path, pool, monkeypatch):
    """The page sends a recipe: the worker decodes the photos, loads the base and extracts the features;
    this process (the web process) decodes nothing and loads no base, and the next job reads the
    features from disk instead of extracting them again."""
    from conftest import shared_data

    from dnn2core import catsdogs as cd
    from dnn2core import pretrained

    from collections import OrderedDict

    root = shared_data("cats_and_dogs")
    monkeypatch.setenv("DNN2_DATA_DIR", str(root.parent))
    monkeypatch.setattr(cd, "_PREPARED", OrderedDict())  # other tests may have used this process's caches
    monkeypatch.setattr(pretrained, "_LOADED", OrderedDict())
    folder = cd.find_local_folder()
    choice = pretrained.choose_weights("vgg16", "imagenet", download=False)  # no weights here: random, labelled
    features = tmp_path / "features"
    reg = JobRegistry(RunStore(tmp_path / "w"), JobGate(1), pool=pool)
    spec = cd.RunSpec(approaches=("From scratch", "VGG16 frozen", "VGG16 fine-tuned"), image_size=64, epochs=1,
                      finetune_epochs=1, batch_size=16)

    def start(seed: int):
        recipe = cd.recipe_for(folder, replace(spec, seed=seed), 24, 12, [choice], str(features))
        assert len(recipe.folder.train) == 24 and len(pickle.dumps(recipe)) < 10_000  # the paths it uses, no images
        run_spec = RunSpec("cats_dogs", {"seed": seed}, data=folder.digest, version=1)
        view, started = reg.start(run_spec, lambda: (recipe, recipe.describe()), budget=Budget(), seed=seed,
                                  label="t", session="learner")
        assert started and isinstance(view.job, RemoteJob)
        names = list(view.job.snapshot().models)
        assert names == ["From scratch", "VGG16 frozen (random weights)", "VGG16 fine-tuned (random weights)"]
        record = reg.wait(run_spec.key, 300)
        assert record.state == "done", record.message
        return reg.view(run_spec.key), record

    view, record = start(0)
    frozen = "VGG16 frozen (random weights)"
    assert record.extra["kinds"][frozen] == "frozen (cached features)"
    assert record.extra["report"] == "All 36 images are usable."  # the worker's decoding report (24 + 12)
    snap = view.snapshot()
    assert snap.models[frozen].results["extract_seconds"] > 0 and snap.process not in (0, os.getpid())
    assert view.artifacts()["sample/x"].shape == (12, 64, 64, 3)  # validation images for Inside the network
    sets = [d for d in features.iterdir() if d.is_dir()]
    assert len(sets) == 1 and np.load(sets[0] / "train.npy").shape == (24, 2, 2, 512)
    assert view.models[frozen].count_params() == 2 * 2 * 512 + 1  # the head alone is stored

    view2, _ = start(1)
    assert view2.snapshot().models[frozen].results["extract_seconds"] == 0.0  # read from disk
    assert not cd._PREPARED and not pretrained._LOADED  # nothing decoded or loaded in this process


def test_the_batch_attack_runs_in_a_worker(tmp_path, pool):
    from test_adversarial import pixel_switch_model

    from dnn2core import adversarial

    task = adversarial.batch_task(pixel_switch_model({(2, 1, 0): 1}), np.zeros((3, 4, 4, 1), np.float32), [0, 0, 0],
                                  adversarial.AttackSettings(1, 20, 30, seed=0))
    reg = JobRegistry(RunStore(tmp_path / "w"), JobGate(1), pool=pool)
    spec = RunSpec("inside", {"part": "batch", "seed": 0}, version=1)
    view, _ = reg.start(spec, lambda: [ModelRun("One-pixel attack", None, {}, task=task, unit="image")],
                        budget=Budget(), seed=0, label="t", session="learner")
    assert isinstance(view.job, RemoteJob)
    assert reg.wait(spec.key, 120).state == "done"
    result = reg.view(spec.key).snapshot().models["One-pixel attack"].results
    assert result["summary"]["attacked"] == 3 and result["summary"]["successes"] == 3


def test_a_worker_does_not_run_the_app_script_it_was_started_from(tmp_path, monkeypatch):
    """Streamlit puts app.py in sys.modules["__main__"] while a page runs; a spawned worker must not
    execute it again (it used to run the whole app at start)."""
    import sys
    import types

    marker = tmp_path / "ran"
    script = tmp_path / "app.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    pool = WorkerPool(1)
    try:
        worker = pool.lease()
        assert worker.wait_ready(__import__("threading").Event(), 120)
    finally:
        pool.close()
    assert sys.modules["__main__"] is fake and not marker.exists()
