"""MNIST digits in the shapes the course's models expect, shifted digits, and uploaded digits.

The dense network takes 784 flat pixels and the CNN 28x28x1, both scaled to [0, 1]; keeping
that here means the page, tests and benchmarks feed both models identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnn2core.data import Mnist


@dataclass(frozen=True)
class DigitSplit:
    x_train: np.ndarray  # (n, 28, 28) float32 in [0, 1]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def prepare(mnist: Mnist, train_size: int | None = None, seed: int = 0) -> DigitSplit:
    """Scale to [0, 1] and take a seeded, class-balanced-by-chance random subset of the training set."""
    n = len(mnist.y_train)
    if train_size is not None and train_size < n:
        if train_size < 10:
            raise ValueError("Use at least 10 training digits.")
        idx = np.sort(np.random.default_rng(seed).choice(n, size=train_size, replace=False))
    else:
        idx = np.arange(n)
    return DigitSplit(mnist.x_train[idx].astype(np.float32) / 255.0, mnist.y_train[idx].astype(np.int64),
                      mnist.x_test.astype(np.float32) / 255.0, mnist.y_test.astype(np.int64))


def as_input(x: np.ndarray, model_kind: str) -> np.ndarray:
    """(n, 28, 28) -> (n, 784) for the dense net, (n, 28, 28, 1) for the CNN."""
    x = np.asarray(x, dtype=np.float32)
    if model_kind == "dense":
        return x.reshape(len(x), -1)
    if model_kind == "cnn":
        return x.reshape(len(x), 28, 28, 1)
    raise ValueError(f"Unknown model kind {model_kind!r}")


def shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move digits by (dy, dx) pixels, filling with background (no wrap-around)."""
    x = np.asarray(x)
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src = x[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    out[..., max(dy, 0):h - max(-dy, 0), max(dx, 0):w - max(-dx, 0)] = src
    return out


def to_top_right(x: np.ndarray, scale: float = 0.5) -> np.ndarray:
    """Shrink digits and put them in the top-right corner — a place no training digit occupies."""
    from PIL import Image

    x = np.asarray(x, dtype=np.float32)
    size = max(4, int(round(28 * scale)))
    out = np.zeros_like(x)
    for i, img in enumerate(x):
        small = Image.fromarray((img * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
        out[i, :size, 28 - size:] = np.asarray(small, dtype=np.float32) / 255.0
    return out


def digit_from_image(image: np.ndarray) -> np.ndarray:
    """An uploaded picture of a digit -> a 28x28 MNIST-style digit in [0, 1].

    MNIST digits are white on black, fit in a 20x20 box and are centred by centre of mass,
    so a photo of a dark digit on paper is inverted, cropped, resized and centred the same way."""
    from PIL import Image

    g = np.asarray(image, dtype=np.float32)
    if g.ndim == 3:
        g = g[..., :3].mean(axis=2)
    g = g / 255.0 if g.max() > 1.0 else g
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if border.mean() > 0.5:  # light background: invert
        g = 1.0 - g
    g = np.clip((g - np.percentile(g, 5)) / max(g.max() - np.percentile(g, 5), 1e-6), 0, 1)
    g[g < 0.2] = 0.0
    ys, xs = np.nonzero(g)
    if len(ys) == 0:
        raise ValueError("No digit found in the image: it looks blank.")
    crop = g[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((nw, nh), Image.Resampling.LANCZOS),
                       dtype=np.float32) / 255.0
    out = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - nh) // 2, (28 - nw) // 2
    out[top:top + nh, left:left + nw] = small
    total = out.sum()
    cy = (out.sum(axis=1) * np.arange(28)).sum() / total
    cx = (out.sum(axis=0) * np.arange(28)).sum() / total
    return shift(out, int(round(13.5 - cy)), int(round(13.5 - cx)))


CANVAS_SIDE = 280  # the drawing canvas, in CSS pixels: ten screen pixels per MNIST pixel
CANVAS_STROKE = 20  # pen width on it: about the stroke of a 28x28 MNIST digit after scaling


def digit_from_canvas(png: bytes | None) -> np.ndarray | None:
    """A digit drawn with the mouse or a finger (the canvas's PNG: white ink on black) -> a 28x28
    MNIST-style digit, or None while the canvas is blank. The PNG comes from the browser, so it goes
    through the same size and format checks as an upload before it is decoded."""
    if not png:
        return None
    from dnn2core import uploads

    image = uploads.image_array(png, max_side=4 * CANVAS_SIDE, mode="L")
    if int(image.max()) < 64:  # nothing drawn yet (or ink too faint to be a stroke)
        return None
    return digit_from_image(image)
