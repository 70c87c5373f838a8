"""The Ray backend against a local Ray cluster (2 CPUs): a tiny MNIST run with progress, Stop and
the finished run in the store; a cancelled queued job; a killed Ray worker that leaves its run
interrupted; two web processes (replicas) sharing one store. Skips where Ray is not installed
(`make test` installs requirements-cluster.txt)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is in requirements-cluster.txt (make test installs it)")

from conftest import ROOT  # noqa: E402

from dnn2core import cluster, data, experiments  # noqa: E402
from dnn2core.jobs import JobRegistry  # noqa: E402
from dnn2core.runs import RunSpec, RunStore  # noqa: E402
from dnn2core.training import JobGate  # noqa: E402


@pytest.fixture(scope="module")
def local_cluster():
    mp = pytest.MonkeyPatch()
    mp.setenv("DNN2_RAY_ADDRESS", "local")
    mp.setenv("DNN2_RAY_CPUS", "2")
    mp.setenv("DNN2_CPU_PER_JOB", "2")  # one job at a time on this 2-core cluster: the next one queues
    cluster.connect()
    session = ray._private.worker._global_node.get_session_dir_path()
    yield
    cluster.shutdown()
    mp.undo()
    assert not os.path.exists(session)  # the local cluster's folder under /tmp/ray is gone


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist().data


def _start(reg: JobRegistry, mnist, seed: int, epochs: int, n: int = 1000):
    settings = experiments.mnist_settings(models=["Dense"], api="sequential", epochs=epochs, batch=32, opt="adam",
                                          lr=0.001, n=n, val=0.1, seed=seed)
    spec = RunSpec("mnist", settings, data="test", version=experiments.MNIST_VERSION)
    view, started = reg.start(spec, lambda: experiments.mnist_runs(mnist, settings),
                              budget=experiments.mnist_budget(), seed=seed, label="t", session=f"learner{seed}")
    assert started
    return spec.key, view


def _wait_for(predicate, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_resources_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("DNN2_GPU_PER_JOB", raising=False)
    monkeypatch.setenv("DNN2_CPU_PER_JOB", "2")
    assert cluster.job_resources() == {"num_cpus": 2.0}
    monkeypatch.setenv("DNN2_GPU_PER_JOB", "0.25")  # four learners share one GPU
    assert cluster.job_resources() == {"num_gpus": 0.25, "num_cpus": 2.0}
    monkeypatch.setenv("DNN2_GPU_PER_JOB", "lots")
    with pytest.raises(ValueError, match="DNN2_GPU_PER_JOB"):
        cluster.job_resources()
    monkeypatch.delenv("DNN2_RAY_ADDRESS", raising=False)
    assert cluster.ray_address() is None


def test_ray_is_not_imported_without_the_setting():
    code = ("import sys; from dnn2core import jobs, cluster, workers; from dnn2ui import live; "
            "print('ray' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "DNN2_RAY_ADDRESS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_run_trains_on_the_cluster_streams_progress_and_is_stored(local_cluster, tmp_path, mnist):
    reg = JobRegistry(RunStore(tmp_path), JobGate(1))
    key, view = _start(reg, mnist, 21, epochs=3)
    assert isinstance(view.job, cluster.RayJob)
    seen = []
    _wait_for(lambda: seen.append(reg.view(key).snapshot().models["Dense"].epoch) or view.job.done)
    record = reg.wait(key, 60)
    assert record.state == "done" and record.metrics["Dense"]["epochs"] == 3
    assert record.metrics["Dense"]["params"] == 50_890 and record.metrics["Dense"]["test_accuracy"] > 0.8
    assert reg.view(key).snapshot().process not in (0, os.getpid())  # trained by a Ray worker process
    assert reg.view(key).models["Dense"].count_params() == 50_890
    assert seen == sorted(seen)  # progress read back from the store, epoch by epoch


def test_stop_and_cancel_on_the_cluster(local_cluster, tmp_path, mnist):
    reg = JobRegistry(RunStore(tmp_path), JobGate(1))
    key1, view1 = _start(reg, mnist, 22, epochs=300, n=2000)
    key2, view2 = _start(reg, mnist, 23, epochs=1)  # waits: the cluster has room for one job
    _wait_for(lambda: reg.view(key1).snapshot().models["Dense"].epoch >= 1)
    assert view2.job.snapshot().state == "queued" and view2.job.snapshot().queue_position == 1
    reg.stop(key2)  # a queued task is cancelled
    _wait_for(lambda: view2.job.done, 60)
    assert view2.job.snapshot().state == "stopped"
    assert reg.wait(key2, 10) is None  # nothing trained: its settings are free again
    reg.stop(key1)  # a running task reads Stop from the store
    record = reg.wait(key1, 60)
    assert record.state == "stopped" and 1 <= record.metrics["Dense"]["epochs"] < 300


def test_a_killed_ray_worker_leaves_its_run_interrupted(local_cluster, tmp_path, mnist):
    reg = JobRegistry(RunStore(tmp_path), JobGate(1))
    key, view = _start(reg, mnist, 24, epochs=300, n=2000)
    _wait_for(lambda: reg.view(key).snapshot().process > 0 and reg.view(key).snapshot().models["Dense"].epoch >= 1)
    os.kill(reg.view(key).snapshot().process, signal.SIGKILL)
    record = reg.wait(key, 60)
    assert record.state == "interrupted" and "went away" in record.message
    key2, _ = _start(reg, mnist, 25, epochs=1, n=500)  # the cluster goes on
    assert reg.wait(key2, 180).state == "done"


def test_two_replicas_share_one_store(tmp_path):
    """A run started through one web process is seen live and found later through another."""
    script = textwrap.dedent("""
        import sys, time
        from dnn2core.jobs import JobRegistry
        from dnn2core.runs import RunStore
        from dnn2core.training import JobGate
        reg = JobRegistry(RunStore(sys.argv[1]), JobGate(1))
        key = sys.argv[2]
        states = set()
        deadline = time.time() + 240
        while time.time() < deadline:
            view = reg.view(key)
            if view is not None:
                states.add(view.state)
                if view.done:
                    print(sorted(states), view.snapshot().models["Dense"].epoch, flush=True)
                    break
            time.sleep(0.2)
    """)
    from dnn2core.workers import WorkerPool

    pool = WorkerPool(1)
    try:
        mnist = data.load_mnist().data
        reg = JobRegistry(RunStore(tmp_path), JobGate(1), pool=pool)  # replica 1 trains
        settings = experiments.mnist_settings(models=["Dense"], api="sequential", epochs=4, batch=32, opt="adam",
                                              lr=0.001, n=2000, val=0.1, seed=26)
        spec = RunSpec("mnist", settings, data="test", version=experiments.MNIST_VERSION)
        replica2 = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), spec.key], cwd=ROOT,
                                    stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        reg.start(spec, lambda: experiments.mnist_runs(mnist, settings), budget=experiments.mnist_budget(), seed=26,
                  label="t", session="s")
        out, _ = replica2.communicate(timeout=300)
        assert "'running'" in out and "'done'" in out and out.strip().endswith("4")
    finally:
        pool.close()


def test_the_mnist_page_trains_on_the_cluster(local_cluster):
    """The page and the cluster see the same data folder (the contract the README states): the job
    carries only its settings, and the Ray task loads the same digits."""
    from conftest import open_page, own_runs, run_registry

    at = open_page("pages/mnist.py", n="500", epochs="2", models="Dense", seed="27")
    at.button(key="mnist.start").click().run()
    [key] = own_runs(at)
    assert isinstance(run_registry().view(key).job, cluster.RayJob)
    store, deadline = run_registry().store, time.monotonic() + 300
    while time.monotonic() < deadline:  # the learner's page polls, and so keeps its run watched
        record = store.get(key)
        assert record is not None, "the run left the store before it finished"
        if record.finished:
            break
        at.run()
        time.sleep(1.0)
    assert record.state == "done", record.message
    at.run()
    assert "Finished" in " ".join(m.value for m in at.markdown)
