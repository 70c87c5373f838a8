"""Benchmark for "Inside the network": filter-exemplar speed and one-pixel-attack success.

    .venv/bin/python bench/bench_inside.py                      # everything, 100 test digits
    .venv/bin/python bench/bench_inside.py --n 30 --skip-vgg    # a shorter run
    DNN2_DATA_DIR=/work/shared/data .venv/bin/python bench/bench_inside.py

Prints markdown tables:
1. seconds per exemplar (30 gradient steps, 2 upscaling stages, jitter + blur) for VGG16 blocks
   (random weights unless the ImageNet file is present: the cost is the same) and for the MNIST
   CNN's three conv layers; the first call includes tracing the step function, later calls don't;
2. the one-pixel attack on the first N MNIST test digits, skipping any the CNN already gets wrong
   (as the paper does), for 1, 3 and 5 pixels, with the CNN trained 5 epochs on full MNIST:
   success rate and mean model evaluations (queries) per digit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from dnn2core import adversarial, data, digits, interpret, pretrained  # noqa: E402
from dnn2core.device import configure_tensorflow  # noqa: E402
from dnn2core.models import build_mnist_cnn  # noqa: E402


def time_exemplar(model, layer: str, reps: int, **kwargs) -> tuple[float, float]:
    """(first call incl. tracing, mean of the next ``reps`` calls) in seconds."""
    t = time.perf_counter()
    interpret.filter_exemplar(model, layer, 0, **kwargs)
    first = time.perf_counter() - t
    times = []
    for f in range(1, reps + 1):
        t = time.perf_counter()
        interpret.filter_exemplar(model, layer, f, **kwargs)
        times.append(time.perf_counter() - t)
    return first, float(np.mean(times))


def bench_exemplars(cnn, args) -> list[str]:
    rows = ["| model | layer | image size | first call (s) | per exemplar (s) |", "|---|---|---|---|---|"]
    common = dict(steps=30, upscaling_steps=2, jitter=1, blur=0.5)
    if not args.skip_vgg:
        vgg, info = pretrained.load_base("vgg16", "imagenet", download=False)
        label = "VGG16 (ImageNet)" if info.pretrained else "VGG16 (random weights)"
        for layer in ("block1_conv2", "block3_conv3", "block5_conv3"):
            for size in args.vgg_sizes:
                first, warm = time_exemplar(vgg, layer, args.reps, size=size, preprocess=interpret.vgg16_preprocess,
                                            **{**common, "jitter": max(1, size // 32), "blur": 1.0})
                rows.append(f"| {label} | {layer} | {size}x{size} | {first:.2f} | {warm:.2f} |")
                print(rows[-1], flush=True)
    for layer in interpret.conv_layers(cnn):
        first, warm = time_exemplar(cnn, layer, args.reps, **common)
        rows.append(f"| MNIST CNN | {layer} | 28x28 | {first:.2f} | {warm:.3f} |")
        print(rows[-1], flush=True)
    return rows


def train_cnn(args):
    loaded = data.load_mnist()
    if not loaded.provenance.complete:
        print(f"WARNING: {loaded.provenance.badge}: {loaded.provenance.detail}. Set DNN2_DATA_DIR for full MNIST.")
    split = digits.prepare(loaded.data)
    import keras

    keras.utils.set_random_seed(args.seed)
    model = build_mnist_cnn()
    t = time.perf_counter()
    model.fit(digits.as_input(split.x_train, "cnn"), split.y_train, epochs=args.epochs, batch_size=64, verbose=0)
    seconds = time.perf_counter() - t
    probs = interpret.predict_probs(model, digits.as_input(split.x_test, "cnn"))
    accuracy = float(np.mean(probs.argmax(axis=1) == split.y_test))
    note = (f"CNN trained {args.epochs} epochs on {len(split.y_train):,} digits ({loaded.provenance.source}) in "
            f"{seconds:.0f} s: test accuracy {accuracy:.2%} on {len(split.y_test):,}.")
    print(note, flush=True)
    return model, split, note


def bench_attack(model, split, args) -> list[str]:
    x = digits.as_input(split.x_test[:args.n], "cnn")
    y = split.y_test[:args.n]
    budget = args.popsize * (args.maxiter + 1) + 1
    rows = [f"| pixels | digits attacked (of {args.n}) | success rate | mean evaluations | "
            "mean evaluations when fooled | seconds |", "|---|---|---|---|---|---|"]
    for pixels in args.pixels:
        def progress(i, n):
            if i % 10 == 0 or i == n:
                print(f"  {pixels} px: {i}/{n}", flush=True)
        frame, s = adversarial.attack_many(model, x, y, pixels=pixels, maxiter=args.maxiter, popsize=args.popsize,
                                           seed=args.seed, progress=progress)
        fooled = "–" if not s["successes"] else f"{s['mean_queries_success']:,.0f}"
        rows.append(f"| {pixels} | {s['attacked']} | {s['success_rate']:.1%} ({s['successes']}/{s['attacked']}) | "
                    f"{s['mean_queries']:,.0f} | {fooled} | {s['seconds']:.0f} |")
        print(rows[-1], flush=True)
    rows.append("")
    rows.append(f"Budget per digit: population {args.popsize} x up to {args.maxiter} generations "
                f"(at most {budget:,} evaluations, counting the clean image and the initial population); "
                "the search stops at the first generation that fools the model.")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="MNIST test digits to attack (default 100)")
    parser.add_argument("--pixels", type=lambda s: [int(p) for p in s.split(",")], default=[1, 3, 5])
    parser.add_argument("--popsize", type=int, default=200, help="candidates per generation (paper: 400)")
    parser.add_argument("--maxiter", type=int, default=50, help="generations at most (paper: 100)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=3, help="timed exemplars per layer after the first")
    parser.add_argument("--vgg-sizes", type=lambda s: [int(p) for p in s.split(",")], default=[128, 224])
    parser.add_argument("--skip-vgg", action="store_true")
    parser.add_argument("--skip-attack", action="store_true")
    args = parser.parse_args()

    info = configure_tensorflow()
    print(f"Device: {info.label}; TensorFlow {info.tensorflow_version}, Keras {info.keras_version}", flush=True)
    model, split, note = train_cnn(args)
    print("\n## Filter exemplars: 30 gradient steps, 2 upscaling stages, jitter + blur\n", flush=True)
    ex_rows = bench_exemplars(model, args)
    at_rows = []
    if not args.skip_attack:
        print("\n## One-pixel attack on MNIST test digits\n", flush=True)
        at_rows = bench_attack(model, split, args)
    print("\n\n# Results\n")
    print(f"{info.label}. {note}\n")
    print("\n".join(ex_rows))
    if at_rows:
        print()
        print("\n".join(at_rows))


if __name__ == "__main__":
    main()
