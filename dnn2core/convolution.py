"""Convolution, pooling and filter presets in plain NumPy.

The playground must answer in a few tens of milliseconds without importing TensorFlow,
so everything here is vectorised NumPy. The arithmetic matches Keras ``Conv2D`` /
``MaxPooling2D`` exactly (cross-correlation, TensorFlow's asymmetric 'same' padding),
which the tests check against ``tf.nn.conv2d`` / ``tf.nn.max_pool2d``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

PADDINGS = ("valid", "same")
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
}


def _check_padding(padding: str) -> str:
    padding = str(padding).lower()
    if padding not in PADDINGS:
        raise ValueError(f"Padding must be 'valid' or 'same', not {padding!r}.")
    return padding


def _check_int(name: str, value: int, low: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{name} must be a whole number of at least {low}; got {value!r}.")
    return int(value)


def activation_fn(activation: str | None) -> Callable[[np.ndarray], np.ndarray]:
    """Return the activation by name (None or 'linear' mean no activation)."""
    key = "none" if activation in (None, "", "linear") else str(activation).lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[key]


def output_size(n: int, kernel: int, stride: int = 1, padding: str = "valid") -> int:
    """Output length along one axis, as Keras computes it.

    valid: floor((n - k) / s) + 1 (0 when the kernel does not fit); same: ceil(n / s).
    """
    n = _check_int("Input size", n)
    kernel = _check_int("Kernel size", kernel)
    stride = _check_int("Stride", stride)
    if _check_padding(padding) == "same":
        return math.ceil(n / stride)
    return max((n - kernel) // stride + 1, 0)


def same_padding(n: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after): the extra pixel goes after."""
    total = max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)
    return total // 2, total - total // 2


def _pad_amounts(shape: tuple[int, int], kshape: tuple[int, int], stride: int, padding: str):
    if padding == "same":
        return [same_padding(shape[0], kshape[0], stride), same_padding(shape[1], kshape[1], stride)]
    return [(0, 0), (0, 0)]


def _work_dtype(*arrays: np.ndarray):
    """float32 unless an input is float64: the playground's float32 path is the fast one."""
    return np.float64 if any(a.dtype == np.float64 for a in arrays) else np.float32


def _as_image(image) -> tuple[np.ndarray, bool]:
    x = np.asarray(image)
    if x.ndim == 2:
        return x[:, :, None], True
    if x.ndim == 3:
        return x, False
    raise ValueError(f"An image must be HxW or HxWxC; got an array of shape {x.shape}.")


def _as_kernel(kernel, channels: int) -> tuple[np.ndarray, bool]:
    """Bring a kernel to (kh, kw, C, K); report whether it had a filter axis."""
    w = np.asarray(kernel)
    if w.size == 0:
        raise ValueError("The kernel is empty: enter a number in every cell.")
    if w.dtype.kind not in "biuf":
        raise ValueError("The kernel must hold numbers only.")
    if not np.all(np.isfinite(w)):
        raise ValueError("The kernel holds a non-finite value (NaN or infinity); every weight must be a number.")
    if w.ndim == 2:  # one 2D kernel, applied to every input channel and summed
        return np.repeat(w[:, :, None, None], channels, axis=2), False
    if w.ndim == 3:
        if w.shape[2] != channels:
            raise ValueError(f"A {w.shape[0]}x{w.shape[1]}x{w.shape[2]} kernel needs an image with {w.shape[2]} channels; this one has {channels}.")
        return w[:, :, :, None], False
    if w.ndim == 4:
        if w.shape[2] != channels:
            raise ValueError(f"The kernel expects {w.shape[2]} input channels; the image has {channels}.")
        return w, True
    raise ValueError(f"A kernel must be kxk, kxkxC or kxkxCxK; got shape {w.shape}.")


def conv2d(image, kernel, bias=0.0, stride: int = 1, padding: str = "valid", activation: str | None = None) -> np.ndarray:
    """Keras-style 2D convolution (cross-correlation) of one image.

    image: HxW or HxWxC. kernel: kxk (same weights on every channel), kxkxC (one filter)
    or kxkxCxK (K filters). Returns HxW for one filter, HxWxK for K filters.
    Float32 inputs are computed in float32 (fast); anything else in float64.
    """
    x, _ = _as_image(image)
    stride = _check_int("Stride", stride)
    padding = _check_padding(padding)
    w, many = _as_kernel(kernel, x.shape[2])
    kh, kw, c, k = w.shape
    dtype = _work_dtype(x, w)
    x = x.astype(dtype, copy=False)
    w = w.astype(dtype, copy=False)
    b = np.broadcast_to(np.asarray(bias, dtype=dtype), (k,))
    if not np.all(np.isfinite(b)):
        raise ValueError("The bias must be a finite number.")
    act = activation_fn(activation)

    oh = output_size(x.shape[0], kh, stride, padding) if x.shape[0] >= 1 else 0
    ow = output_size(x.shape[1], kw, stride, padding) if x.shape[1] >= 1 else 0
    if oh == 0 or ow == 0:
        raise ValueError(
            f"A {kh}x{kw} kernel does not fit in a {x.shape[0]}x{x.shape[1]} image with 'valid' padding: "
            "use a smaller kernel or 'same' padding.")
    pads = _pad_amounts(x.shape[:2], (kh, kw), stride, padding)
    if padding == "same":
        x = np.pad(x, pads + [(0, 0)])
    # Sum over kernel offsets: each step is one (pixels x C) @ (C x K) product on a strided view.
    out = np.zeros((oh, ow, k), dtype=dtype)
    span_h, span_w = (oh - 1) * stride + 1, (ow - 1) * stride + 1
    for i in range(kh):
        for j in range(kw):
            view = x[i:i + span_h:stride, j:j + span_w:stride, :]
            if c == 1:
                out += view * w[i, j, 0]
            else:
                out += view @ w[i, j]
    out = act(out + b)
    return out if many else out[:, :, 0]


def max_pool2d(x, pool_size: int = 2, stride: int | None = None, padding: str = "valid") -> np.ndarray:
    """Max pooling like Keras MaxPooling2D (stride defaults to the pool size)."""
    a = np.asarray(x)
    if a.ndim not in (2, 3):
        raise ValueError(f"Max pooling takes HxW or HxWxK; got shape {a.shape}.")
    pool_size = _check_int("Pool size", pool_size)
    stride = _check_int("Pool stride", pool_size if stride is None else stride)
    padding = _check_padding(padding)
    squeeze = a.ndim == 2
    a = a[:, :, None] if squeeze else a
    oh = output_size(a.shape[0], pool_size, stride, padding)
    ow = output_size(a.shape[1], pool_size, stride, padding)
    if oh == 0 or ow == 0:
        raise ValueError(f"A {pool_size}x{pool_size} pool does not fit in a {a.shape[0]}x{a.shape[1]} map with 'valid' padding.")
    if padding == "same":
        a = np.pad(a.astype(np.result_type(a, np.float32), copy=False),
                   _pad_amounts(a.shape[:2], (pool_size, pool_size), stride, padding) + [(0, 0)],
                   constant_values=-np.inf)
    span_h, span_w = (oh - 1) * stride + 1, (ow - 1) * stride + 1
    out = None
    for i in range(pool_size):
        for j in range(pool_size):
            view = a[i:i + span_h:stride, j:j + span_w:stride, :]
            out = view.copy() if out is None else np.maximum(out, view)
    return out[:, :, 0] if squeeze else out


@dataclass(frozen=True)
class PositionExplanation:
    """Everything a learner needs to check one output value by hand."""
    row: int
    col: int
    top: int  # input row of the patch's top-left corner (in unpadded coordinates; may be negative)
    left: int
    patch: np.ndarray  # kxk or kxkxC, zeros where the patch overhangs the padded border
    kernel: np.ndarray
    products: np.ndarray
    sum_of_products: float
    bias: float
    pre_activation: float
    output: float


def explain_position(image, kernel, bias: float = 0.0, stride: int = 1, padding: str = "valid",
                     activation: str | None = None, row: int = 0, col: int = 0) -> PositionExplanation:
    """Break one output value of a single-filter convolution into its terms."""
    x, gray = _as_image(image)
    w2 = np.asarray(kernel, dtype=np.float64)
    w, _ = _as_kernel(w2, x.shape[2])
    w = w[:, :, :, 0]
    kh, kw, _ = w.shape
    padding = _check_padding(padding)
    stride = _check_int("Stride", stride)
    oh = output_size(x.shape[0], kh, stride, padding)
    ow = output_size(x.shape[1], kw, stride, padding)
    if not (0 <= row < oh and 0 <= col < ow):
        raise ValueError(f"Output position ({row}, {col}) is outside the {oh}x{ow} feature map.")
    pads = _pad_amounts(x.shape[:2], (kh, kw), stride, padding)
    top, left = row * stride - pads[0][0], col * stride - pads[1][0]
    padded = np.pad(x.astype(np.float64), pads + [(0, 0)])
    patch = padded[row * stride:row * stride + kh, col * stride:col * stride + kw, :]
    products = patch * w
    total = float(products.sum())
    pre = total + float(bias)
    out = float(activation_fn(activation)(np.float64(pre)))
    if gray:
        patch, products, w = patch[:, :, 0], products[:, :, 0], w[:, :, 0]
    return PositionExplanation(row, col, top, left, patch, w, products, total, float(bias), pre, out)


def conv_layer_params(kernel_size: int, in_channels: int, filters: int, use_bias: bool = True) -> int:
    """Trainable parameters of a Conv2D layer: (k*k*C + 1) * K."""
    return (kernel_size * kernel_size * in_channels + int(use_bias)) * filters


# The course's worked example (Video 1): patch, vertical-line kernel, bias 1, ReLU.
COURSE_PATCH = np.array([[-0.4, 0.2, 2.1], [0.1, 1.7, 1.4], [0.0, -0.4, 1.2]])
COURSE_KERNEL = np.array([[-1.0, 2.0, -1.0]] * 3)
COURSE_BIAS = 1.0
COURSE_PRINTED_PRE_ACTIVATION = -2.2  # the text's slip; its own numbers give -0.4


# ----------------------------------------------------------------------------- presets

def _binomial(k: int) -> np.ndarray:
    """Row k of Pascal's triangle: [1, 2, 1] for 3, a cheap Gaussian."""
    return np.array([math.comb(k - 1, i) for i in range(k)], dtype=np.float64)


def _derivative(k: int) -> np.ndarray:
    """Smoothed central difference of length k: Sobel's [-1, 0, 1] for k=3, [-1, -2, 0, 2, 1] for 5."""
    return np.convolve(_binomial(k - 2), [1.0, 0.0, -1.0])[::-1].copy()


def preset_kernel(name: str, size: int = 3) -> np.ndarray:
    """A named size x size kernel. Sizes 3, 5 and 7 (odd, so the kernel has a centre)."""
    size = _check_int("Kernel size", size)
    if size % 2 == 0:
        raise ValueError("Preset kernels need an odd size (3, 5 or 7) so that they have a centre.")
    c = size // 2
    key = name.lower()
    k = np.zeros((size, size))
    if key == "identity":
        k[c, c] = 1.0
    elif key == "vertical line":  # the course's kernel: [-1, 2, -1] in every row
        k[:, c] = 2.0
        k[:, c - 1] = k[:, c + 1] = -1.0
    elif key == "horizontal edges":  # Prewitt: bright above, dark below
        k[:c, :] = 1.0
        k[c + 1:, :] = -1.0
    elif key == "sobel x":
        k = np.outer(_binomial(size), _derivative(size))
    elif key == "sobel y":
        k = np.outer(_derivative(size), _binomial(size))
    elif key == "laplacian":
        if size == 3:
            k = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        else:
            k[:] = 1.0
            k[c, c] = -(size * size - 1.0)
    elif key == "box blur":
        k[:] = 1.0 / (size * size)
    elif key == "gaussian":
        g = _binomial(size)
        k = np.outer(g, g) / g.sum() ** 2
    elif key == "sharpen":  # sums to 1: flat regions keep their value, edges get steeper
        if size == 3:
            k = np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])
        else:  # unsharp mask: 2 * identity - Gaussian blur
            g = _binomial(size)
            k = -np.outer(g, g) / g.sum() ** 2
            k[c, c] += 2.0
    elif key == "emboss":
        i, j = np.mgrid[0:size, 0:size]
        k = np.sign((i - c) + (j - c)).astype(np.float64) * (np.abs(i - c) + np.abs(j - c) > 0)
        k = k * np.where(np.abs((i - c) + (j - c)) == 2 * c, 2.0, 1.0)
        k[c, c] = 1.0
    else:
        raise ValueError(f"Unknown preset {name!r}; choose one of {PRESETS}.")
    return k


PRESETS = ("identity", "vertical line", "horizontal edges", "sobel x", "sobel y", "laplacian",
           "box blur", "gaussian", "sharpen", "emboss")


# ----------------------------------------------------------------------------- playground helpers

def parse_kernel(rows) -> np.ndarray:
    """Validate a kernel typed by a learner (nested lists / DataFrame values).

    Empty cells and non-finite entries are refused with the cell's position, so the page
    can say exactly what to fix."""
    try:
        arr = np.array(rows, dtype=object)
    except ValueError:
        raise ValueError("The kernel must be a square grid of numbers.") from None
    if arr.ndim != 2 or arr.size == 0 or arr.shape[0] != arr.shape[1]:
        raise ValueError("The kernel must be a square grid of numbers.")
    out = np.empty(arr.shape, dtype=np.float64)
    for (i, j), v in np.ndenumerate(arr):
        try:
            f = float(v) if v is not None and str(v).strip() != "" else math.nan
        except (TypeError, ValueError):
            raise ValueError(f"Row {i + 1}, column {j + 1} of the kernel is not a number ({v!r}).") from None
        if v is None or str(v).strip() == "" or (isinstance(v, float) and math.isnan(v)):
            raise ValueError(f"Row {i + 1}, column {j + 1} of the kernel is empty: every weight needs a number.")
        if not math.isfinite(f):
            raise ValueError(f"Row {i + 1}, column {j + 1} of the kernel is {v!r}: weights must be finite numbers.")
        out[i, j] = f
    return out


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 image -> float32 in [0, 1] (what Keras' Rescaling(1/255) feeds a Conv2D)."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    return img.astype(np.float32)


def formula_text(n: int, kernel: int, stride: int, padding: str) -> str:
    """The output-size formula filled in with the current numbers (LaTeX)."""
    out = output_size(n, kernel, stride, padding)
    if padding == "same":
        return rf"\left\lceil \frac{{n}}{{s}} \right\rceil = \left\lceil \frac{{{n}}}{{{stride}}} \right\rceil = {out}"
    return (rf"\left\lfloor \frac{{n - k}}{{s}} \right\rfloor + 1 = \left\lfloor \frac{{{n} - {kernel}}}{{{stride}}}"
            rf" \right\rfloor + 1 = {out}")


def filter_bank(names: list[str], size: int, channels: int) -> np.ndarray:
    """K preset filters as one kxkxCxK kernel: each 2D preset repeated over the C input channels."""
    if not names:
        raise ValueError("Choose at least one filter for the layer.")
    kernels = [np.repeat(preset_kernel(n, size)[:, :, None], channels, axis=2) for n in names]
    return np.stack(kernels, axis=3)


@dataclass(frozen=True)
class PlaygroundResult:
    feature_map: np.ndarray  # HxW after bias and activation
    pre_activation: np.ndarray
    pooled: np.ndarray | None
    in_shape: tuple[int, int]
    out_shape: tuple[int, int]
    pooled_shape: tuple[int, int] | None


def run_playground(image: np.ndarray, kernel: np.ndarray, bias: float, stride: int, padding: str,
                   activation: str | None, pool_size: int | None = None, pool_stride: int | None = None) -> PlaygroundResult:
    """One playground update: convolve, activate, optionally max-pool."""
    x = to_unit_float(image)
    k = np.asarray(kernel, dtype=np.float32)
    pre = conv2d(x, k, bias=bias, stride=stride, padding=padding, activation=None)
    fmap = activation_fn(activation)(pre)
    pooled = max_pool2d(fmap, pool_size, pool_stride) if pool_size else None
    return PlaygroundResult(fmap, pre, pooled, x.shape[:2], fmap.shape[:2],
                            None if pooled is None else pooled.shape[:2])


# ----------------------------------------------------------------------------- inspecting one cell

CHANNEL_NAMES = ("red", "green", "blue")  # the order PIL and Keras keep a colour image's channels in


def channel_names(channels: int) -> list[str]:
    """Names for an image's channels: red, green, blue for a colour photo, else 'channel 1', ..."""
    if channels == len(CHANNEL_NAMES):
        return list(CHANNEL_NAMES)
    return [f"channel {i + 1}" for i in range(channels)]


def channel_sums(products: np.ndarray) -> np.ndarray:
    """Per-channel sums of a kxkxC products block: the C partial sums whose total is the
    filter's sum of products (what the page shows to explain a 3-channel kernel)."""
    p = np.asarray(products, dtype=np.float64)
    return p.reshape(-1, 1).sum(axis=0) if p.ndim == 2 else p.sum(axis=(0, 1))


def clamp_cell(row: int, col: int, shape: tuple[int, int]) -> tuple[int, int]:
    """The inspected output cell moved to the nearest one inside a map of ``shape`` (rows, columns).

    A new image or stride changes the feature map's size; the learner's cell should stay where it
    was when it still exists (or move to the edge), not jump back to the corner."""
    rows, cols = int(shape[0]), int(shape[1])
    if rows < 1 or cols < 1:
        raise ValueError(f"A feature map needs at least one cell; got shape {tuple(shape)}.")
    return min(max(int(row), 0), rows - 1), min(max(int(col), 0), cols - 1)


def cell_from_selection(selection) -> tuple[int, int] | None:
    """(row, column) of the first point of a Plotly selection event, or None when nothing is selected.

    The feature map's click layer puts one point at each cell centre, x = column and y = row."""
    points = ((selection or {}).get("selection") or {}).get("points") or []
    for p in points:
        x, y = p.get("x"), p.get("y")
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(x) and math.isfinite(y):
            return int(round(y)), int(round(x))
    return None


def pick_step(shape: tuple[int, int], max_points: int = 10_000) -> int:
    """The smallest step s such that every s-th row and column of a map gives at most ``max_points``
    click targets. A browser draws ten thousand invisible markers quickly, fifty thousand not; on a
    large map one cell is about a pixel wide, so a step of 2 or 3 costs no precision a mouse has."""
    rows, cols = int(shape[0]), int(shape[1])
    if max_points < 1:
        raise ValueError("max_points must be at least 1.")
    step = 1
    while math.ceil(rows / step) * math.ceil(cols / step) > max_points:
        step += 1
    return step


def robust_limits(values, low: float = 1.0, high: float = 99.0,
                  symmetric: bool | None = None) -> tuple[float, float]:
    """Colour limits from the ``low`` and ``high`` percentiles, so a few extreme cells do not wash out
    the rest of a feature map. Maps with negative values (drawn on a diverging scale) get limits
    symmetric about 0, so zero keeps the scale's white (``symmetric`` forces either way); a constant
    map gets a unit-wide range around its value."""
    z = np.asarray(values, dtype=np.float64)
    z = z[np.isfinite(z)]
    if z.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(z, [low, high]))
    if float(z.min()) < 0 if symmetric is None else symmetric:
        lim = max(abs(lo), abs(hi))
        return (-lim, lim) if lim > 0 else (-1.0, 1.0)
    if hi - lo <= 0:
        return lo - 0.5, hi + 0.5
    return lo, hi


# ----------------------------------------------------------------------------- sizes and formulas as text

def size_text(shape) -> str:
    """A shape as NumPy and Keras write it, rows first: (171, 256, 3) -> '171 × 256 × 3'."""
    return " × ".join(str(int(n)) for n in shape)


def rows_first_detail(detail: str, shape) -> str:
    """A data set's 'WxH px' description rewritten rows first ('H × W px (rows × columns)'),
    so the page uses one convention for sizes. Text without the size is returned unchanged."""
    rows, cols = int(shape[0]), int(shape[1])
    return detail.replace(f"{cols}x{rows} px", f"{size_text((rows, cols))} px (rows × columns)", 1)


def upload_note(original_wh: tuple[int, int], shown_wh: tuple[int, int]) -> str:
    """The upload caption, rows × columns; PIL gives sizes as (width, height)."""
    original = size_text((original_wh[1], original_wh[0]))
    if tuple(shown_wh) == tuple(original_wh):
        return f"Uploaded {original} px (rows × columns)"
    return f"Uploaded {original} px (rows × columns), downscaled to {size_text((shown_wh[1], shown_wh[0]))}"


def _num(v: float, fmt: str) -> str:
    """A number for a LaTeX sum: negatives in brackets, so '+ (-0.4)' never reads '+ -0.4'."""
    s = format(float(v), fmt)
    return f"({s})" if s.startswith("-") else s


def sum_of_products_latex(patch, kernel, fmt: str = "g", per_line: int = 3) -> str:
    """The term-by-term sum of p_i f_i as a LaTeX ``aligned`` block: at most ``per_line`` products
    a line (one kernel row each for a 3x3 kernel) and the result on its own line, so the whole sum
    fits a narrow screen instead of running off its right edge."""
    p, f = np.asarray(patch, dtype=np.float64).ravel(), np.asarray(kernel, dtype=np.float64).ravel()
    if p.shape != f.shape:
        raise ValueError("The patch and the kernel must have the same size.")
    terms = [f"({format(a, fmt)})({format(b, fmt)})" for a, b in zip(p, f)]
    lines = [" + ".join(terms[i:i + per_line]) for i in range(0, len(terms), per_line)]
    body = [r"\sum_i p_i f_i &= " + lines[0]] + [r"&\quad + " + line for line in lines[1:]]
    body.append(rf"&= {format(float(np.dot(p, f)), '.4g')}")
    return r"\begin{aligned}" + r" \\ ".join(body) + r"\end{aligned}"


def output_latex(sum_of_products: float, bias: float, pre_activation: float, activation: str, output: float,
                 channel_totals: Sequence[float] | None = None, channel_labels: Sequence[str] | None = None) -> str:
    """One output value, line by line: the sum of products (split by channel for a colour image),
    the bias added once, then the activation."""
    first = r"\sum_i p_i f_i &= "
    if channel_totals is not None and len(channel_totals) > 1:
        labels = channel_labels or [str(i + 1) for i in range(len(channel_totals))]
        first += " + ".join(rf"\Sigma_{{\text{{{n}}}}}" for n in labels) + r" \\ &= "
        first += " + ".join(_num(v, ".4f") for v in channel_totals) + " = "
    first += format(sum_of_products, ".4f")
    lines = [first,
             rf"b + \sum_i p_i f_i &= {bias:g} + {_num(sum_of_products, '.4f')} = {pre_activation:.4f}",
             rf"c = \phi(b + \textstyle\sum_i p_i f_i) &= \text{{{activation}}}({pre_activation:.4f}) = {output:.4f}"]
    return r"\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}"
