"""Safe reading of learner uploads.

A classroom server takes files from anyone, so uploads are opened lazily with an explicit
format list, their pixel count is checked *before* decoding (Pillow only warns up to
~179 MP, so a 10,000 x 10,000 PNG of 100 KB would otherwise be decoded into 300 MB), and
truncated files are refused rather than half-loaded. Every failure is an ``UploadError``
whose message a learner can act on.
"""

from __future__ import annotations

import io
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff")
MAX_IMAGE_PIXELS = 25_000_000   # 25 MP: a 5000 x 5000 photo; anything larger is refused before decoding
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # matches server.maxUploadSize in .streamlit/config.toml


class UploadError(ValueError):
    """An upload that cannot be used, with a message for the learner."""


def _read_bytes(source: bytes | BinaryIO, max_bytes: int) -> bytes:
    data = source if isinstance(source, (bytes, bytearray)) else source.read(max_bytes + 1)
    if len(data) == 0:
        raise UploadError("The file is empty.")
    if len(data) > max_bytes:
        raise UploadError(f"The file is larger than {max_bytes // (1024 * 1024)} MB; please upload a smaller one.")
    return bytes(data)


def open_image(source: bytes | BinaryIO, *, max_pixels: int = MAX_IMAGE_PIXELS,
               max_bytes: int = MAX_UPLOAD_BYTES, mode: str | None = None) -> Image.Image:
    """Decode an uploaded image safely and return it fully loaded.

    mode: None keeps grayscale as "L" and turns everything else into "RGB"; or force "L"/"RGB".
    """
    data = _read_bytes(source, max_bytes)
    with warnings.catch_warnings():
        # Our own limit (checked below, before decoding) is stricter than Pillow's warning.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
        except UnidentifiedImageError:
            raise UploadError("This file is not an image we can read (PNG, JPEG, GIF, BMP, WebP or TIFF).") from None
        except Image.DecompressionBombError:
            raise UploadError(f"This image has far too many pixels to open safely (the limit is "
                              f"{max_pixels / 1e6:.0f} megapixels). Please resize it first.") from None
        w, h = im.size
        if w * h > max_pixels:
            raise UploadError(
                f"This image is {w:,} x {h:,} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
                f"{max_pixels / 1e6:.0f} megapixels. Please resize it first.")
        if w < 1 or h < 1:
            raise UploadError("This image has no pixels.")
        try:
            im.load()
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
            raise UploadError(f"The image file is damaged or incomplete ({exc}).") from None
    im = ImageOps.exif_transpose(im)
    if mode is None:
        mode = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
    if im.mode in ("I", "I;16", "F") and mode == "L":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "P", "PA") and mode == "RGB":
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert(mode)


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale (never upscale) so the longer side is at most max_side, keeping aspect."""
    if max(image.size) <= max_side:
        return image
    out = image.copy()
    out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out


def image_array(source: bytes | BinaryIO, *, max_side: int | None = None, mode: str | None = None,
                max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Uploaded image as uint8 HxW or HxWx3, downscaled to max_side if given."""
    im = open_image(source, mode=mode, max_pixels=max_pixels)
    if max_side is not None:
        im = fit_within(im, max_side)
    return np.asarray(im)


# ----------------------------------------------------------------------------- tables

MAX_TABLE_ROWS = 500_000


def read_table(source: bytes | BinaryIO, *, required: tuple[str, ...] = (), numeric: tuple[str, ...] = (),
               max_rows: int = MAX_TABLE_ROWS, max_bytes: int = MAX_UPLOAD_BYTES, **read_csv_kwargs) -> "pd.DataFrame":
    """Read an uploaded CSV (optionally gzipped) and check it before any page uses it.

    required: columns that must be present. numeric: columns that must hold numbers; text in
    them is reported with the first offending row numbers (1-based, as a spreadsheet shows them)."""
    import pandas as pd

    data = _read_bytes(source, max_bytes)
    if data[:2] == b"\x1f\x8b":
        import gzip
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            raise UploadError("The gzip file is damaged or incomplete.") from None
    try:
        df = pd.read_csv(io.BytesIO(data), nrows=max_rows + 1, **read_csv_kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise UploadError(f"This file could not be read as CSV ({exc}).") from None
    except pd.errors.EmptyDataError:
        raise UploadError("The CSV file has no data.") from None
    if df.empty:
        raise UploadError("The CSV file has a header but no rows.")
    if len(df) > max_rows:
        raise UploadError(f"The file has more than {max_rows:,} rows; please upload a smaller extract.")
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UploadError(f"The file has no column named {', '.join(repr(m) for m in missing)}. "
                          f"Columns found: {', '.join(map(str, df.columns[:20]))}"
                          + (" …" if len(df.columns) > 20 else "") + ".")
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            rows = (np.flatnonzero(bad.to_numpy())[:5] + 2).tolist()  # +1 for 1-based, +1 for the header line
            sample = df[col][bad].astype(str).head(3).tolist()
            raise UploadError(f"Column {col!r} must hold numbers, but has text such as {sample} "
                              f"(file lines {rows}).")
        if np.isinf(values.to_numpy(dtype=float)).any():
            raise UploadError(f"Column {col!r} holds infinite values.")
        df[col] = values
    return df
