"""Cats-vs-dogs figures for README: input-pipeline and VGG16 feature-extraction speed at 224 and 150 px,
seconds per epoch of the head on cached features against the full frozen model, and the validation
accuracy of the course's from-scratch network on the real 2,000/1,000-image set.

VGG16 runs with random weights (``weights=None``): speed does not depend on the weights.

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_catsdogs.py
       [--pipeline-images 600] [--vgg-images 64] [--epoch-images 128] [--scratch-size 128] [--scratch-epochs 6]
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

from dnn2core import catsdogs as cd  # noqa: E402
from dnn2core import pretrained, uploads  # noqa: E402
from dnn2core.device import configure_tensorflow  # noqa: E402


def pipeline_speed(folder: cd.CatsDogsFolder, size: int, n: int) -> tuple[float, float]:
    """(images/s of the PIL check, images/s of tf.data decode+resize+batch) on n training images."""
    images = folder.train.balanced(n)
    t0 = time.perf_counter()
    report = uploads.scan_images(images.paths)
    scan = len(images) / (time.perf_counter() - t0)
    ds = cd.make_dataset(images.without(report.bad_paths()), size, batch_size=32, cache=False)
    t0 = time.perf_counter()
    count = sum(int(x.shape[0]) for x, _ in ds)
    return scan, count / (time.perf_counter() - t0)


def extraction_speed(base, size: int, n: int) -> float:
    x = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    cd.extract_features(base, "vgg16", x[:8])  # warm-up: graph tracing is not throughput
    t0 = time.perf_counter()
    cd.extract_features(base, "vgg16", x)
    return n / (time.perf_counter() - t0)


def epoch_times(base, prepared: cd.Prepared, n_epoch_images: int, per: int) -> tuple[float, float, float]:
    """(head s/epoch on cached features, full frozen model s/epoch, extraction s), scaled to ``per`` images."""
    size = prepared.image_size
    x, y = prepared.x_train[:n_epoch_images], prepared.y_train[:n_epoch_images]
    t0 = time.perf_counter()
    feats = cd.extract_features(base, "vgg16", x)
    extract = (time.perf_counter() - t0) * per / len(x)
    rep = int(np.ceil(per / len(x)))
    fx, fy = np.concatenate([feats] * rep)[:per], np.concatenate([y] * rep)[:per]
    head = cd.build_head(feats.shape[1:])
    head.fit(fx[:64], fy[:64], epochs=1, batch_size=32, verbose=0)  # warm-up
    t0 = time.perf_counter()
    head.fit(fx, fy, epochs=1, batch_size=32, verbose=0)
    head_s = time.perf_counter() - t0
    full = cd.build_vgg16_transfer(input_shape=(size, size, 3), base=cd.copy_base(base))
    full.fit(x[:32].astype(np.float32), y[:32], epochs=1, batch_size=32, verbose=0)  # warm-up
    t0 = time.perf_counter()
    full.fit(x.astype(np.float32), y, epochs=1, batch_size=32, verbose=0)
    full_s = (time.perf_counter() - t0) * per / len(x)
    return head_s, full_s, extract


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeline-images", type=int, default=600)
    ap.add_argument("--vgg-images", type=int, default=64)
    ap.add_argument("--epoch-images", type=int, default=128)
    ap.add_argument("--scratch-size", type=int, default=128)
    ap.add_argument("--scratch-epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    info = configure_tensorflow()
    folder = cd.find_local_folder()
    if folder is None:
        sys.exit("No cats/dogs images: set DNN2_DATA_DIR to ../shared/data (it holds cats_and_dogs/).")
    print(f"Images: {folder.describe()} at {folder.root}; device {info.label}\n")
    import keras

    base = pretrained.build_base("vgg16", None)
    rows = []
    for size in (224, 150):
        scan, pipe = pipeline_speed(folder, size, args.pipeline_images)
        vgg = extraction_speed(base, size, args.vgg_images)
        rows.append((size, scan, pipe, vgg))
    print("| size | PIL check (images/s) | tf.data decode+resize (images/s) | VGG16 feature extraction (images/s) |")
    print("|---:|---:|---:|---:|")
    for size, scan, pipe, vgg in rows:
        print(f"| {size} px | {scan:,.0f} | {pipe:,.0f} | {vgg:,.1f} |")

    print(f"\nTime per epoch of 2,000 training images (head measured on 2,000 cached feature rows; full frozen model "
          f"measured on {args.epoch_images} images and scaled):\n")
    print("| size | extraction once (s) | head on cached features (s/epoch) | full frozen model (s/epoch) |")
    print("|---:|---:|---:|---:|")
    for size in (150, 224):
        prepared = cd.prepare(folder, size, n_train=args.epoch_images, n_val=32)
        head_s, full_s, extract = epoch_times(base, prepared, args.epoch_images, 2000)
        print(f"| {size} px | {extract:,.0f} | {head_s:.2f} | {full_s:,.0f} |")

    keras.utils.set_random_seed(args.seed)
    t0 = time.perf_counter()
    prepared = cd.prepare(folder, args.scratch_size, n_train=cd.SUBSET_TRAIN, n_val=None)
    prep_s = time.perf_counter() - t0
    model = cd.build_catsdogs_scratch((args.scratch_size, args.scratch_size, 3))
    t0 = time.perf_counter()
    hist = model.fit(prepared.x_train, prepared.y_train, batch_size=32, epochs=args.scratch_epochs, shuffle=True,
                     validation_data=(prepared.x_val, prepared.y_val), verbose=0).history
    fit_s = time.perf_counter() - t0
    print(f"\nFrom-scratch course network, {len(prepared.y_train):,} train / {len(prepared.y_val):,} validation images at "
          f"{args.scratch_size} px, RMSprop 1e-3, batch 32, seed {args.seed} (decode {prep_s:.0f} s, "
          f"{fit_s / args.scratch_epochs:.0f} s/epoch):\n")
    print("| epoch | train accuracy | validation accuracy |")
    print("|---:|---:|---:|")
    for i, (a, v) in enumerate(zip(hist["accuracy"], hist["val_accuracy"]), 1):
        print(f"| {i} | {a:.3f} | {v:.3f} |")
    print(f"\nBest validation accuracy {max(hist['val_accuracy']):.3f} (course: about 0.70 at 224 px).")


if __name__ == "__main__":
    main()
