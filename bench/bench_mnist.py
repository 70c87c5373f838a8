"""MNIST figures for README: accuracy after the course's training, seconds per epoch, and the
dashboard's training loop (TrainingJob + progress callback) against a bare model.fit.

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_mnist.py [--epochs 5] [--loop-epochs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dnn2core import data, digits, models  # noqa: E402
from dnn2core.device import configure_tensorflow  # noqa: E402
from dnn2core.training import Budget, JobGate, ModelRun, TrainingJob  # noqa: E402


def bare_fit(build, x, y, epochs, batch_size, seed):
    import keras

    keras.utils.set_random_seed(seed)
    model = build()
    t0 = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=0.1, verbose=0)
    return model, time.perf_counter() - t0


def dashboard_fit(name, build, x, y, epochs, batch_size, seed, validation_data=None):
    validation = {"validation_data": validation_data} if validation_data is not None else {"validation_split": 0.1}
    job = TrainingJob([ModelRun(name, build, dict(x=x, y=y, epochs=epochs, batch_size=batch_size, **validation))],
                      gate=JobGate(1), budget=Budget(max_epochs=100, max_samples=10**9, max_seconds=10**5), seed=seed)
    t0 = time.perf_counter()
    job.start()
    while not job.join(0.5):
        job.heartbeat()  # what the page's fragment does once a second
    elapsed = time.perf_counter() - t0
    snap = job.snapshot()
    assert snap.state == "done", snap.message
    return job.models[name], elapsed, snap.models[name].epoch_seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--loop-epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--skip-loop", action="store_true", help="only the accuracy table")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="one accuracy row per seed")
    args = ap.parse_args()
    info = configure_tensorflow()
    loaded = data.load_mnist()
    print(f"MNIST: {loaded.provenance.badge} ({loaded.provenance.detail}); device {info.label}\n")
    split = digits.prepare(loaded.data)
    rows = []
    for name, build in (("Dense", models.build_mnist_dense), ("CNN", models.build_mnist_cnn)):
        kind = name.lower()
        x, xt = digits.as_input(split.x_train, kind), digits.as_input(split.x_test, kind)
        for seed in args.seeds:
            # as the course: all 60,000 training digits, the test set as validation data
            model, secs, per_epoch = dashboard_fit(name, build, x, split.y_train, args.epochs, args.batch, seed,
                                                   validation_data=(xt, split.y_test))
            acc = model.evaluate(xt, split.y_test, verbose=0)[1]
            rows.append((name, seed, args.epochs, acc, sum(per_epoch) / len(per_epoch)))
    print(f"| model | seed | epochs | test accuracy | s/epoch (batch {args.batch}, rmsprop) |")
    print("|---|---|---|---|---|")
    for name, seed, ep, acc, spe in rows:
        print(f"| {name} | {seed} | {ep} | {acc:.2%} | {spe:.1f} |")

    if args.skip_loop:
        return
    print(f"\nTraining loop overhead ({args.loop_epochs} epochs each, same data, same run):\n")
    print("| model | bare model.fit, best of 2 (s) | dashboard TrainingJob, best of 2 (s) | ratio |")
    print("|---|---|---|---|")
    for name, build in (("Dense", models.build_mnist_dense), ("CNN", models.build_mnist_cnn)):
        kind = name.lower()
        x = digits.as_input(split.x_train, kind)
        bare_fit(build, x[:2000], split.y_train[:2000], 1, args.batch, 0)  # warm-up (graph tracing)
        bares, dashes = [], []
        for _ in range(2):  # alternate, so drift in the machine's speed hits both alike
            bares.append(bare_fit(build, x, split.y_train, args.loop_epochs, args.batch, 1)[1])
            dashes.append(dashboard_fit(name, build, x, split.y_train, args.loop_epochs, args.batch, 1)[1])
        bare, dash = min(bares), min(dashes)
        print(f"| {name} | {bare:.1f} | {dash:.1f} | {dash / bare:.3f} |")


if __name__ == "__main__":
    main()
