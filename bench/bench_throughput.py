"""Training at the framework's limit: each page's course model through the dashboard against the
course's bare ``model.fit``, and the course's 5,000-epoch house-price run.

For every model: the course's code (NumPy arrays, batch 32, ``model.fit`` in this process) and the
dashboard's path (the experiment's runs from ``dnn2core.experiments``, trained by a ``JobRegistry``
in a worker process with progress, Stop, budgets and the run store). Trials alternate bare,
dashboard, bare, dashboard; the table gives medians of samples/s and s/epoch, and the ratio.

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_throughput.py [--trials 2] [--house-epochs 5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dnn2core import data, experiments  # noqa: E402
from dnn2core import forecasting as fc  # noqa: E402
from dnn2core import regression as reg  # noqa: E402
from dnn2core.jobs import JobRegistry  # noqa: E402
from dnn2core.runs import RunSpec, RunStore  # noqa: E402
from dnn2core.training import Budget, JobGate  # noqa: E402
from dnn2core.workers import WorkerPool  # noqa: E402


def bare(run, seed: int) -> tuple[float, int, int]:
    """The course's code: build, then model.fit on the NumPy arrays (no steps_per_execution)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = run.build()
    kwargs = {k: v for k, v in run.fit_kwargs.items() if k != "callbacks"}
    t0 = time.perf_counter()
    model.fit(**kwargs, verbose=0)
    return time.perf_counter() - t0, int(kwargs["epochs"]), _rows(kwargs)


def _rows(kwargs: dict) -> int:
    n = len(kwargs["x"])
    return int(n * (1 - float(kwargs.get("validation_split") or 0)))


def dashboard(reg_: JobRegistry, experiment: str, settings: dict, make_runs, seed: int) -> tuple[float, int]:
    """The dashboard's path; seconds of fit (the run's own epoch times, without the worker's queue)."""
    spec = RunSpec(experiment, settings, data=f"bench-{time.time_ns()}", version=0)
    view, _ = reg_.start(spec, make_runs, budget=Budget(max_epochs=10_000, max_samples=10**10, max_seconds=10**5),
                         seed=seed, label="bench", session=f"bench-{time.time_ns()}")
    while not view.job.done:
        view.job.heartbeat()
        time.sleep(0.5)
    record = reg_.wait(spec.key, 600)
    assert record.state == "done", record.message
    snap = reg_.view(spec.key).snapshot()
    name = next(iter(snap.models))
    return sum(snap.models[name].epoch_seconds), snap.models[name].epoch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--house-epochs", type=int, default=5000, help="0 skips the long run")
    args = ap.parse_args()
    mnist = data.load_mnist().data
    ames = reg.load_ames().data
    traffic = fc.load_traffic().data
    cases = []
    for model in ("Dense", "CNN"):
        s = experiments.mnist_settings(models=[model], api="sequential", epochs=1, batch=32, opt="rmsprop", lr=0.001,
                                       n=min(60_000, len(mnist.y_train)), val=0.1, seed=0)
        cases.append((f"MNIST {model} (1 epoch, {s['n']:,} digits)", "mnist", s,
                      lambda s=s: experiments.mnist_runs(mnist, s)))
    t = experiments.sequences_settings(gap=6, policy="longest", agg="mean", hours=0, h=6, layout="course", extras=[],
                                       models=["LSTM"], epochs=20, seed=0)
    prep_t = experiments.sequences_prepare(experiments.sequences_series(traffic, t), t)
    cases.append(("traffic LSTM 16, course shape (20 epochs)", "sequences", t,
                  lambda: experiments.sequences_runs(prep_t, t)))
    h = experiments.housing_settings(epochs=100, batch=32, seed=0, noid=False, std=False, log=False, stop=False,
                                     patience=50)
    prep_h = experiments.housing_prepare(ames, h)[2]
    cases.append(("house prices 4 x Dense(64) (100 epochs)", "housing", h, lambda: experiments.housing_runs(prep_h, h)))

    pool = WorkerPool(1)
    with tempfile.TemporaryDirectory() as store_dir:
        registry = JobRegistry(RunStore(store_dir), JobGate(1), pool=pool)
        rows = []
        for label, experiment, settings, make_runs in cases:
            bare_s, dash_s = [], []
            epochs = rows_n = 0
            for trial in range(args.trials):
                seconds, epochs, rows_n = bare(make_runs()[0], trial)
                bare_s.append(seconds)
                seconds, _ = dashboard(registry, experiment, {**settings, "trial": trial}, make_runs, trial)
                dash_s.append(seconds)
                print(f"{label}: bare {bare_s[-1]:.1f} s, dashboard {dash_s[-1]:.1f} s", flush=True)
            b, d = statistics.median(bare_s), statistics.median(dash_s)
            rows.append((label, rows_n * epochs / b, b / epochs, rows_n * epochs / d, d / epochs, b / d))
        long_run = None
        if args.house_epochs:
            long = {**h, "epochs": args.house_epochs}
            prep_l = experiments.housing_prepare(ames, long)[2]
            t0 = time.perf_counter()
            fit_s, done = dashboard(registry, "housing", long, lambda: experiments.housing_runs(prep_l, long), 0)
            long_run = (args.house_epochs, done, time.perf_counter() - t0, fit_s)
    pool.close()
    print("| model | course's bare fit: samples/s | s/epoch | dashboard: samples/s | s/epoch | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, bs, be, ds, de, ratio in rows:
        print(f"| {label} | {bs:,.0f} | {be:.3f} | {ds:,.0f} | {de:.3f} | {ratio:.2f}x |")
    if long_run:
        epochs, done, wall, fit_s = long_run
        print(f"\nHouse prices, the course's {epochs:,}-epoch run through the dashboard (train and dev MAE every "
              f"epoch): {done:,} epochs in {wall / 60:.1f} min wall ({fit_s / done * 1000:.0f} ms/epoch); goal <= 10 min.")


if __name__ == "__main__":
    main()
