"""Playground speed: one update (convolution + max pooling of a 512x512 RGB image with 8 filters
of 5x5) in vectorised NumPy, against tf.nn.conv2d + tf.nn.max_pool2d on the same input, same run.

Usage: .venv/bin/python bench/bench_convolution.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dnn2core import convolution as conv  # noqa: E402


def timeit(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((512, 512, 3), dtype=np.float32)
    w = rng.standard_normal((5, 5, 3, 8)).astype(np.float32)

    def ours(padding="same"):
        fmap = conv.conv2d(x, w, bias=0.1, stride=1, padding=padding, activation="relu")
        return conv.max_pool2d(fmap, 2)

    import tensorflow as tf

    xt, wt = tf.constant(x[None]), tf.constant(w)

    def reference(padding="SAME"):
        y = tf.nn.relu(tf.nn.conv2d(xt, wt, strides=1, padding=padding) + 0.1)
        return tf.nn.max_pool2d(y, 2, 2, "VALID").numpy()

    np.testing.assert_allclose(ours(), reference()[0], rtol=1e-4, atol=1e-4)
    print("| case | NumPy median (ms) | NumPy p90 (ms) | tf.nn median (ms) | NumPy / TF |")
    print("|---|---|---|---|---|")
    for label, a, b in (("512x512x3, 8 filters 5x5, same, + 2x2 pool", ours, reference),
                        ("512x512x3, 8 filters 5x5, valid, + 2x2 pool",
                         lambda: ours("valid"), lambda: reference("VALID"))):
        t_ours, t_tf = timeit(a, args.repeats), timeit(b, args.repeats)
        m_ours, m_tf = statistics.median(t_ours), statistics.median(t_tf)
        p90 = sorted(t_ours)[int(0.9 * len(t_ours)) - 1]
        print(f"| {label} | {m_ours:.1f} | {p90:.1f} | {m_tf:.1f} | {m_ours / m_tf:.2f} |")


if __name__ == "__main__":
    main()
