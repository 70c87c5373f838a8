"""Every reader of untrusted input: uploaded images, tables and zips, and paths typed by learners.

A classroom server takes files and text from anyone, so everything that decodes, extracts,
scans or resolves such input lives here, and every failure is an ``UploadError`` whose message
a learner can act on (and which names no server path). Images are opened with an explicit
format list and their pixel count is checked *before* decoding (Pillow only warns up to
~179 MP); gzip is decompressed as a stream with a cap; tables wider than ``MAX_TABLE_COLUMNS``
are refused before parsing; zips are checked member by member, only image files are written,
within a per-session disk quota, and a failed extraction is removed. Typed paths must resolve
under allowed roots (``DNN2_DATA_DIR``, the Keras cache, the session's upload folder), and a
path outside them gets the same answer as one that does not exist.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps

from dnn2core.env import env_flag, env_number

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff")
MAX_IMAGE_PIXELS = 25_000_000   # 25 MP: a 5000 x 5000 photo; anything larger is refused before decoding
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # matches server.maxUploadSize in .streamlit/config.toml

_MB = 1024 * 1024


class UploadError(ValueError):
    """An upload (or a typed path) that cannot be used, with a message for the learner."""


def _read_bytes(source: bytes | BinaryIO, max_bytes: int) -> bytes:
    data = source if isinstance(source, (bytes, bytearray)) else source.read(max_bytes + 1)
    if len(data) == 0:
        raise UploadError("The file is empty.")
    if len(data) > max_bytes:
        raise UploadError(f"The file is larger than {max_bytes // _MB} MB; please upload a smaller one.")
    return bytes(data)


# ============================================================================= images


def _too_many_pixels(w: int, h: int, max_pixels: int) -> UploadError:
    return UploadError(f"This image is {w:,} x {h:,} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
                       f"{max_pixels / 1e6:.0f} megapixels. Please resize it first.")


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    """Open, check the pixel count, then decode fully. Pillow raises many types on damaged data
    (OSError, SyntaxError, ValueError, struct.error, EOFError, ...): all become UploadError."""
    with warnings.catch_warnings():
        # Our own limit (checked before decoding) is stricter than Pillow's warning.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on damaged metadata: the result says enough
        try:
            im = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
        except Image.DecompressionBombError:
            raise UploadError(f"This image has far too many pixels to open safely (the limit is "
                              f"{max_pixels / 1e6:.0f} megapixels). Please resize it first.") from None
        except Exception:  # noqa: BLE001 - UnidentifiedImageError and whatever a broken header raises
            raise UploadError("This file is not an image we can read (PNG, JPEG, GIF, BMP, WebP or TIFF).") from None
        w, h = im.size
        if w < 1 or h < 1:
            raise UploadError("This image has no pixels.")
        if w * h > max_pixels:
            raise _too_many_pixels(w, h, max_pixels)
        try:
            im.load()
            im = ImageOps.exif_transpose(im)  # reads EXIF, which can be damaged too
        except Image.DecompressionBombError:
            raise _too_many_pixels(w, h, max_pixels) from None
        except MemoryError:
            raise UploadError("This image is too large to decode on this server.") from None
        except Exception:  # noqa: BLE001 - truncated or corrupt data, in any of Pillow's exception types
            raise UploadError("The image file is damaged or incomplete.") from None
    return im


def open_image(source: bytes | BinaryIO, *, max_pixels: int = MAX_IMAGE_PIXELS,
               max_bytes: int = MAX_UPLOAD_BYTES, mode: str | None = None) -> Image.Image:
    """Decode an uploaded image safely and return it fully loaded.

    mode: None keeps grayscale as "L" and turns everything else into "RGB"; or force "L"/"RGB"."""
    im = _decode(_read_bytes(source, max_bytes), max_pixels)
    try:
        return _to_mode(im, mode)
    except UploadError:
        raise
    except Exception:  # noqa: BLE001 - an odd mode Pillow cannot convert
        raise UploadError("This image uses a colour format we cannot convert.") from None


def _to_mode(im: Image.Image, mode: str | None) -> Image.Image:
    if mode is None:
        mode = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
    if im.mode in ("I", "I;16", "F") and mode == "L":
        arr = np.asarray(im, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise UploadError("This image holds values that are not numbers.")
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


# ============================================================================= tables

MAX_TABLE_ROWS = 500_000
MAX_TABLE_COLUMNS = 2_000  # 1,000,000 columns took 24 s to parse and 62 s to scan for a time column
MAX_TABLE_BYTES = 64 * _MB  # decompressed: a 2 MB gzip may otherwise unpack to gigabytes


def gunzip_capped(data: bytes, max_bytes: int = MAX_TABLE_BYTES) -> bytes:
    """Decompress gzip (every member) as a stream, refusing more than max_bytes of output, so a
    gzip bomb costs at most max_bytes of memory instead of everything it would unpack to."""
    out = bytearray()
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            chunk_in = rest
            while not d.eof:
                piece = d.decompress(chunk_in, max_bytes + 1 - len(out))
                out += piece
                if len(out) > max_bytes:
                    raise UploadError(f"The gzip file unpacks to more than {max_bytes // _MB} MB; "
                                      "please upload a smaller extract.")
                chunk_in = d.unconsumed_tail
                if not piece and not chunk_in:
                    break  # input used up before the end of the stream: truncated
            if not d.eof:
                raise UploadError("The gzip file is damaged or incomplete.")
            rest = d.unused_data.lstrip(b"\x00")  # gzip allows zero padding between members
    except zlib.error:
        raise UploadError("The gzip file is damaged or incomplete.") from None
    return bytes(out)


def _header_columns(data: bytes, sep: str) -> int:
    """Columns in the first line, counted without parsing (an upper bound when quoted)."""
    end = data.find(b"\n")
    first = data if end < 0 else data[:end]
    return first.count(sep.encode("utf-8", "replace")) + 1


def read_table(source: bytes | BinaryIO, *, required: tuple[str, ...] = (), numeric: tuple[str, ...] = (),
               max_rows: int = MAX_TABLE_ROWS, max_bytes: int = MAX_UPLOAD_BYTES,
               max_columns: int = MAX_TABLE_COLUMNS, max_unpacked: int = MAX_TABLE_BYTES,
               **read_csv_kwargs) -> "pd.DataFrame":
    """Read an uploaded CSV (optionally gzipped) and check it before any page uses it.

    required: columns that must be present. numeric: columns that must hold numbers; text in
    them is reported with the first offending row numbers (1-based, as a spreadsheet shows them)."""
    import pandas as pd

    data = _read_bytes(source, max_bytes)
    if data[:2] == b"\x1f\x8b":
        data = gunzip_capped(data, max_unpacked)
    sep = read_csv_kwargs.get("sep") or read_csv_kwargs.get("delimiter") or ","
    n_cols = _header_columns(data, sep if isinstance(sep, str) and len(sep) == 1 else ",")
    if n_cols > max_columns:
        raise UploadError(f"The file has {n_cols:,} columns; at most {max_columns:,} are accepted.")
    try:
        df = pd.read_csv(io.BytesIO(data), nrows=max_rows + 1, **read_csv_kwargs)
    except pd.errors.EmptyDataError:
        raise UploadError("The CSV file has no data.") from None
    except MemoryError:
        raise UploadError("This file is too large to read on this server.") from None
    except Exception as exc:  # noqa: BLE001 - ParserError, UnicodeDecodeError, ValueError, OverflowError, ...
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UploadError(f"This file could not be read as CSV ({reason}).") from None
    if df.shape[1] > max_columns:
        raise UploadError(f"The file has {df.shape[1]:,} columns; at most {max_columns:,} are accepted.")
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


# ============================================================================= zips

ZIP_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")  # what training decodes (tf.io.decode_image)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a")
MAX_ZIP_BYTES = MAX_UPLOAD_BYTES  # server.maxUploadSize in .streamlit/config.toml
MAX_ZIP_MEMBERS = 30_000
MAX_ZIP_UNCOMPRESSED = 200 * _MB  # images only; a zip bomb is refused before anything is written
MAX_IMAGE_FILE_BYTES = 20 * _MB  # one image file; larger members are skipped, never written
MAX_NAME_CHARS = 200  # per path part: file systems stop at 255 bytes
_READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


@dataclass(frozen=True)
class Extracted:
    """What ``extract_zip`` wrote: only image files, under ``root``."""

    root: Path
    images: int
    bytes_written: int
    skipped: int  # members that are not image files (or too large): never written


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member refuses the whole archive (zip-slip, links, unreadable), or None."""
    name = info.filename.replace("\\", "/")
    shown = repr(name[:60] + ("…" if len(name) > 60 else ""))
    inside = " A zip may only contain files inside its own folders."
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return f"Refused: {shown} is an absolute path." + inside
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return f"Refused: {shown} points outside the archive (../)." + inside
    if (info.external_attr >> 16) & 0o170000 == stat.S_IFLNK:
        return f"Refused: {shown} is a symbolic link." + inside
    if "\x00" in name or any(len(p) > MAX_NAME_CHARS for p in parts):
        return f"Refused: {shown} has a name that is too long or invalid."
    if info.flag_bits & 0x1:
        return f"Refused: {shown} is password-protected."
    if info.compress_type not in _READABLE_METHODS:
        return f"Refused: {shown} uses a compression method we cannot read (save it as a plain zip)."
    return None


def _wanted(info: zipfile.ZipInfo, suffixes: Sequence[str]) -> bool:
    name = info.filename.replace("\\", "/")
    base = PurePosixPath(name).name
    return (not info.is_dir() and not name.startswith("__MACOSX/") and not base.startswith(".")
            and PurePosixPath(base).suffix.lower() in suffixes)


def _zip_failure(exc: BaseException) -> str:
    """A learner's words for what zipfile raised while extracting."""
    if isinstance(exc, RuntimeError):
        return "A file in the zip is password-protected."
    if isinstance(exc, NotImplementedError):
        return "A file in the zip uses a compression method we cannot read (save it as a plain zip)."
    if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError)):
        return "The zip is damaged (a file in it is incomplete or failed its checksum)."
    if isinstance(exc, OSError):
        return ("A file in the zip could not be written: its name is too long or clashes with a folder "
                "of the same name.")
    return "The zip could not be unpacked."


def extract_zip(source: bytes | str | Path, dest: str | Path, *, max_bytes: int = MAX_ZIP_BYTES,
                max_members: int = MAX_ZIP_MEMBERS, max_uncompressed: int = MAX_ZIP_UNCOMPRESSED,
                max_file_bytes: int = MAX_IMAGE_FILE_BYTES, quota_left: int | None = None,
                suffixes: Sequence[str] = ZIP_IMAGE_SUFFIXES) -> Extracted:
    """Extract only the image files of a zip into the new folder ``dest``.

    Refused before anything is written: not a zip, too big, too many entries, any member outside
    the archive (``../``, an absolute path), a link, an encrypted or unreadable member, or images
    that unpack to more than ``max_uncompressed`` (or ``quota_left``, the session's disk space).
    While writing, a member that is not really an image (by its first bytes) is skipped; any
    failure removes ``dest`` entirely and raises ``UploadError``."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise UploadError("The zip file is empty.")
        if len(source) > max_bytes:
            raise UploadError(f"The zip is larger than {max_bytes // _MB} MB, the server's upload limit. "
                              "Put a larger set in a folder on the server instead.")
        handle: Any = io.BytesIO(source)
    else:
        handle = str(source)
    try:
        zf = zipfile.ZipFile(handle)
        infos = zf.infolist()
    except Exception:  # noqa: BLE001 - BadZipFile, OSError, ValueError, struct errors on a mangled directory
        raise UploadError("This file is not a zip archive we can read.") from None
    with zf:
        if not infos:
            raise UploadError("The zip archive is empty.")
        if len(infos) > max_members:
            raise UploadError(f"The zip holds {len(infos):,} entries; at most {max_members:,} are accepted.")
        for info in infos:
            why = _member_problem(info)
            if why is not None:
                raise UploadError(why)
        chosen = [i for i in infos if _wanted(i, suffixes) and i.file_size <= max_file_bytes]
        total = sum(i.file_size for i in chosen)
        if total > max_uncompressed:
            raise UploadError(f"The images in the zip unpack to {total / 1e6:,.0f} MB; at most "
                              f"{max_uncompressed / 1e6:,.0f} MB are accepted.")
        if quota_left is not None and total > quota_left:
            raise UploadError(f"The images in the zip unpack to {total / 1e6:,.0f} MB, more than this session's "
                              f"remaining upload space ({max(0, quota_left) / 1e6:,.0f} MB).")
        dest = Path(dest)
        if dest.exists() and any(dest.iterdir()):
            raise UploadError("The upload folder is not empty.")  # the caller must give a fresh folder
        dest.mkdir(parents=True, exist_ok=True)
        try:
            written, n_images = _write_members(zf, chosen, dest.resolve(), max_file_bytes)
        except BaseException as exc:
            shutil.rmtree(dest, ignore_errors=True)
            if isinstance(exc, UploadError):
                raise
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: not ours to translate
                raise
            raise UploadError(_zip_failure(exc)) from None
    return Extracted(dest.resolve(), n_images, written, len(infos) - n_images)


def _write_members(zf: zipfile.ZipFile, chosen: Iterable[zipfile.ZipInfo], root: Path,
                   max_file_bytes: int) -> tuple[int, int]:
    """Stream the chosen members to disk; returns (bytes written, images written)."""
    written = n_images = 0
    for info in chosen:
        target = (root / info.filename.replace("\\", "/")).resolve()
        if root not in target.parents:  # belt and braces after the name check
            raise UploadError("Refused: a file in the zip points outside the archive.")
        with zf.open(info) as src:
            head = src.read(8)
            if not head.startswith(_IMAGE_MAGIC):
                continue  # named like an image but is not one: never written
            target.parent.mkdir(parents=True, exist_ok=True)
            size = len(head)
            with open(target, "wb") as out:
                out.write(head)
                while chunk := src.read(256 * 1024):
                    size += len(chunk)
                    if size > max_file_bytes:  # zipfile stops at the declared size; this is the backstop
                        raise UploadError("A file in the zip is larger than it claims to be.")
                    out.write(chunk)
        written += size
        n_images += 1
    return written, n_images


# ============================================================================= Keras model files

MAX_MODEL_BYTES = MAX_UPLOAD_BYTES  # server.maxUploadSize caps every upload; the course's CNN is 1.3 MB
MAX_MODEL_UNPACKED = 200 * _MB  # what the members may unpack to: a zip bomb is refused before loading
MAX_MODEL_CONFIG_BYTES = 2 * _MB  # config.json: a few kB for the course's CNN, ~100 kB for a ResNet
MAX_MODEL_COMPRESSION = 200  # unpacked / packed: real weights barely compress
KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5", "model.weights.npz")
KERAS_REFUSED_CLASSES = ("Lambda", "TFSMLayer")  # run arbitrary code, or load another file from the server


def _config_problem(node: Any, depth: int = 0) -> str | None:
    """Why a Keras config must not be loaded at all, or None: an object from outside Keras (custom
    code), a Lambda layer (arbitrary Python), or absurd nesting. safe_mode refuses these too; this
    check answers before Keras is asked, with a message a learner can act on."""
    if depth > 200:
        return "Refused: the model's configuration is nested too deeply."
    if isinstance(node, dict):
        cls = node.get("class_name")
        if isinstance(cls, str) and cls in KERAS_REFUSED_CLASSES:
            return (f"Refused: the model has a {cls} layer, which runs code of its own; this server only "
                    "loads models built from Keras' own layers (safe mode).")
        module = node.get("module")
        if "class_name" in node and module is not None and not (
                isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            return (f"Refused: the model uses {str(cls)[:60]!r} from {str(module)[:60]!r}, custom code that is "
                    "not part of Keras; this server only loads models built from Keras' own layers.")
        registered = node.get("registered_name")
        if isinstance(registered, str) and ">" in registered:  # Custom>MyLayer: a registered custom object
            return (f"Refused: the model uses the custom object {registered[:60]!r}; this server only loads "
                    "models built from Keras' own layers.")
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        why = _config_problem(child, depth + 1)
        if why is not None:
            return why
    return None


def check_keras_archive(data: bytes, *, max_unpacked: int = MAX_MODEL_UNPACKED,
                        max_config: int = MAX_MODEL_CONFIG_BYTES) -> dict:
    """Check a ``.keras`` file before Keras opens it; returns its parsed ``config.json``.

    A ``.keras`` file is a zip of ``config.json``, ``metadata.json`` and the weights (``.h5`` or
    ``.npz``), with an optional ``assets/`` folder. Refused: not a zip, a damaged or truncated one,
    links, absolute or ``../`` names, encryption, members a Keras file does not have, members that
    unpack to more than ``max_unpacked`` in all or compress more than ``MAX_MODEL_COMPRESSION`` to 1
    (a zip bomb), a missing or unreadable ``config.json``, and configurations that name code from
    outside Keras or Lambda layers (``_config_problem``)."""
    import json

    if data[:4] != b"PK\x03\x04":
        raise UploadError("This file is not a Keras model (.keras files are zip archives; an .h5 or SavedModel "
                          "file must be saved again with model.save('name.keras')).")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception:  # noqa: BLE001 - BadZipFile, OSError, ValueError, struct errors on a mangled directory
        raise UploadError("The .keras file is damaged or incomplete (its zip directory cannot be read).") from None
    with zf:
        if len(infos) > 1000:
            raise UploadError(f"The .keras file holds {len(infos):,} entries; a Keras model has a handful.")
        names = set()
        for info in infos:
            why = _member_problem(info)
            if why is not None:
                raise UploadError(why)
            name = info.filename.replace("\\", "/")
            if name not in KERAS_MEMBERS and not name.startswith("assets/"):
                raise UploadError(f"Refused: {name[:60]!r} is not part of a Keras model file (expected "
                                  f"{', '.join(KERAS_MEMBERS[:3])} and an optional assets/ folder).")
            names.add(name)
        total = sum(i.file_size for i in infos)
        if total > max_unpacked:
            raise UploadError(f"The .keras file unpacks to {total / 1e6:,.0f} MB; at most "
                              f"{max_unpacked / 1e6:,.0f} MB are accepted.")
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1 * _MB and ratio > MAX_MODEL_COMPRESSION:
                raise UploadError(f"Refused: {info.filename[:60]!r} unpacks {ratio:,.0f} times larger than it is "
                                  "packed (a zip bomb).")
        if "config.json" not in names or not ({"model.weights.h5", "model.weights.npz"} & names):
            raise UploadError("This zip is not a Keras model file: it lacks config.json or the weights.")
        cfg_info = zf.getinfo("config.json")
        if cfg_info.file_size > max_config:
            raise UploadError(f"The model's config.json is {cfg_info.file_size / 1e6:,.1f} MB; at most "
                              f"{max_config / 1e6:,.0f} MB are accepted.")
        try:
            raw = zf.read("config.json")
            for info in infos:  # read every member once: a truncated or corrupted file fails here, not in Keras
                with zf.open(info) as member:
                    while member.read(1024 * 1024):
                        pass
        except Exception as exc:  # noqa: BLE001 - BadZipFile (CRC), zlib.error, EOFError on truncated data
            raise UploadError(_zip_failure(exc).replace("The zip", "The .keras file")) from None
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UploadError("The model's config.json is not valid JSON.") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise UploadError("The model's config.json does not describe a Keras model.")
    why = _config_problem(config)
    if why is not None:
        raise UploadError(why)
    return config


def _load_problem(exc: BaseException) -> str:
    """A learner's words for what keras.saving.load_model raised on a checked archive."""
    text = str(exc)
    if "Lambda" in text or "safe_mode" in text or "unsafe" in text.lower():
        return ("Refused by Keras' safe mode: the model holds code (a Lambda layer or a custom function). "
                "Rebuild it from Keras' own layers.")
    if "Could not locate" in text or "custom" in text.lower() or "Unknown" in text:
        return ("The model uses a layer or function Keras does not know (custom code). Rebuild it from Keras' "
                "own layers.")
    if isinstance(exc, MemoryError):
        return "This model is too large to load on this server."
    return f"The model could not be loaded ({type(exc).__name__}); save it again with model.save('name.keras')."


@dataclass(frozen=True)
class LoadedModel:
    """An uploaded model that loaded: the model, and a fingerprint of the file (the same file
    uploaded again is the same model: its exemplars and batch attacks are found again)."""

    model: Any
    digest: str  # sha256 of the file, hex
    size: int  # bytes


def load_keras_model(source: bytes | BinaryIO, *, max_bytes: int = MAX_MODEL_BYTES,
                     max_unpacked: int = MAX_MODEL_UNPACKED) -> LoadedModel:
    """An uploaded ``.keras`` file as a Keras model, or an UploadError saying why not.

    Reads at most ``max_bytes`` (+1, to tell a larger file), checks the archive
    (``check_keras_archive``), writes it to a private temporary file (mode 0600, in a folder only
    this process can read) that is removed whatever happens, and loads it with
    ``keras.saving.load_model(path, safe_mode=True, compile=False)``: no code from the file runs,
    and no optimizer state is built. Keras is imported here, never at module import."""
    import tempfile

    data = _read_bytes(source, max_bytes)
    check_keras_archive(data, max_unpacked=max_unpacked)
    import keras

    folder = tempfile.mkdtemp(prefix=SESSION_PREFIX + "model-")
    try:
        path = os.path.join(folder, "upload.keras")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Keras' notes on skipped optimizer state and the like
                model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:  # noqa: BLE001 - ValueError, TypeError, KeyError, OSError from h5py, ...
            raise UploadError(_load_problem(exc)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not hasattr(model, "layers") or not callable(model):
        raise UploadError("The file holds a Keras object that is not a model.")
    import hashlib

    return LoadedModel(model, hashlib.sha256(data).hexdigest(), len(data))


# ============================================================================= image checks and scans

SKIP_REASONS = {
    "corrupt": "unreadable or corrupt",
    "truncated": "truncated (incomplete file)",
    "not_rgb": "not RGB (grayscale, CMYK, palette or with alpha)",
    "huge": "too large (pixels or bytes)",
    "format": "format TensorFlow cannot decode",
}
DECODABLE_FORMATS = ("JPEG", "PNG", "BMP", "GIF")  # what tf.io.decode_image reads


@dataclass(frozen=True)
class ScanReport:
    """Which image files are usable, and why the others were skipped (paths per reason)."""

    kept: tuple[str, ...] = ()
    skipped: dict[str, tuple[str, ...]] = field(default_factory=dict)  # reason -> paths

    @property
    def n_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def bad_paths(self) -> set[str]:
        return {p for v in self.skipped.values() for p in v}

    def merged(self, other: "ScanReport") -> "ScanReport":
        reasons = set(self.skipped) | set(other.skipped)
        return ScanReport(self.kept + other.kept,
                          {k: self.skipped.get(k, ()) + other.skipped.get(k, ()) for k in reasons})

    def summary(self) -> str:
        if not self.n_skipped:
            return f"All {len(self.kept):,} images are usable."
        parts = [f"{len(v):,} {SKIP_REASONS[k]}" for k, v in self.skipped.items() if v]
        return f"Skipped {self.n_skipped:,} image(s): " + "; ".join(parts) + f". Using {len(self.kept):,}."


def check_image(path: str, *, max_pixels: int = MAX_IMAGE_PIXELS, max_bytes: int = MAX_IMAGE_FILE_BYTES) -> str | None:
    """The reason an image file must be skipped (a key of SKIP_REASONS), or None. Decodes fully,
    so a file TensorFlow would choke on mid-training is caught here; never raises."""
    try:
        if os.path.getsize(path) > max_bytes:
            return "huge"
    except OSError:
        return "corrupt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                if im.format not in DECODABLE_FORMATS:
                    return "format"
                w, h = im.size
                if w * h > max_pixels or w < 1 or h < 1:
                    return "huge"
                if im.mode != "RGB":
                    return "not_rgb"
                if im.format == "JPEG":
                    im.draft("RGB", (max(1, w // 8), max(1, h // 8)))  # decode at 1/8 scale: same data read, faster
                im.load()
        except (Image.DecompressionBombError, MemoryError):
            return "huge"
        except OSError as exc:
            return "truncated" if "truncated" in str(exc).lower() else "corrupt"
        except Exception:  # noqa: BLE001 - UnidentifiedImageError, SyntaxError, ValueError, struct.error, ...
            return "corrupt"
    return None


def scan_images(paths: Iterable[str], **limits: int) -> ScanReport:
    """Check every image before a dataset is built, so bad files are counted instead of crashing fit."""
    kept: list[str] = []
    skipped: dict[str, list[str]] = {}
    for p in paths:
        why = check_image(p, **limits)
        if why is None:
            kept.append(p)
        else:
            skipped.setdefault(why, []).append(p)
    return ScanReport(tuple(kept), {k: tuple(v) for k, v in skipped.items()})


# ============================================================================= session folders on disk

SESSION_PREFIX = "dnn2-"
SESSION_DISK_QUOTA = int(env_number("DNN2_SESSION_DISK_MB", 250, whole=True, minimum=1)) * _MB
STALE_AFTER_S = 12 * 3600.0  # no live session keeps a folder untouched this long


def folder_bytes(root: str | Path) -> int:
    """Bytes of the regular files under root (links are not followed); 0 when it is gone."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def quota_left(root: str | Path, quota: int = SESSION_DISK_QUOTA) -> int:
    """What a session may still write under its folder: its quota minus what is there now."""
    return max(0, int(quota) - folder_bytes(root))


def _newest_mtime(root: Path) -> float:
    newest = root.lstat().st_mtime
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
            except OSError:
                continue
    return newest


def sweep_stale(parent: str | Path | None = None, *, prefix: str = SESSION_PREFIX, max_age_s: float = STALE_AFTER_S,
                now: float | None = None) -> list[Path]:
    """Remove ``prefix*`` folders in parent (default: the system temp folder) untouched for
    max_age_s: sessions of an earlier server (or a CI run) that never cleaned up. Returns them."""
    import tempfile

    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        try:
            if not p.name.startswith(prefix) or p.is_symlink() or not p.is_dir():
                continue
            if now - _newest_mtime(p) < max_age_s:
                continue
        except OSError:
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


# ============================================================================= paths typed by learners

ALLOW_SERVER_PATHS_ENV = "DNN2_ALLOW_SERVER_PATHS"


@dataclass(frozen=True)
class Root:
    """A folder typed paths may point into, and how messages name it."""

    label: str  # "the data folder"
    path: Path


def server_paths_allowed() -> bool:
    """``DNN2_ALLOW_SERVER_PATHS=1``: any path (a single-user machine, not a classroom server)."""
    return env_flag(ALLOW_SERVER_PATHS_ENV)


def allowed_roots(session_dir: str | Path | None = None) -> list[Root]:
    """DNN2_DATA_DIR, the Keras cache, and the session's own upload folder."""
    from dnn2core import data

    roots = [Root("the data folder", data.data_dir()), Root("the Keras cache", data.keras_home())]
    if session_dir:
        roots.append(Root("your uploads", Path(session_dir)))
    return roots


def _kind_ok(path: Path, want: str) -> bool:
    try:
        return path.is_dir() if want == "folder" else path.is_file()
    except OSError:
        return False


def display_path(path: str | Path, roots: Sequence[Root]) -> str:
    """A path named relative to its root ("the data folder/cats_and_dogs"), never the server's own path;
    "a file" when it lies under no root."""
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError):
        return "a file"
    for root in roots:
        try:
            base = root.path.resolve()
        except (OSError, RuntimeError):
            continue
        if resolved == base:
            return root.label
        if base in resolved.parents:
            return f"{root.label}/{resolved.relative_to(base).as_posix()}"
    return str(path) if server_paths_allowed() else "a file"


def resolve_server_path(typed: str, roots: Sequence[Root], *, want: str = "folder") -> tuple[Path, str]:
    """(resolved path, its name for messages) of a folder or file a learner typed.

    Relative paths are looked up in each root in turn. The resolved path (links followed) must lie
    under a root unless DNN2_ALLOW_SERVER_PATHS is set; a path outside the roots gets exactly the
    same answer as one that does not exist, so the field cannot probe the server's files."""
    if want not in ("folder", "file"):
        raise ValueError(f"want must be 'folder' or 'file', not {want!r}")
    where = ", ".join(r.label for r in roots[:-1]) + (" or " if len(roots) > 1 else "") + roots[-1].label \
        if roots else "the allowed folders"
    not_found = UploadError(f"There is no {want} by that name in {where}. Type a path inside one of them, "
                            "for example cats_and_dogs_filtered.")
    text = (typed or "").strip()
    if not text or len(text) > 1000 or "\x00" in text:
        raise not_found
    typed_path = Path(text).expanduser() if text.startswith("~/") else Path(text)
    if server_paths_allowed():
        candidates = [typed_path] if typed_path.is_absolute() else [typed_path] + [r.path / typed_path for r in roots]
        for cand in candidates:
            if _kind_ok(cand, want):
                return cand.resolve(), str(cand)
        raise UploadError(f"There is no {want} at {text}.")
    candidates = [typed_path] if typed_path.is_absolute() else [r.path / typed_path for r in roots]
    for cand in candidates:
        try:
            resolved = cand.resolve()
        except (OSError, RuntimeError):
            continue
        for root in roots:
            try:
                base = root.path.resolve()
            except (OSError, RuntimeError):
                continue
            if resolved != base and base not in resolved.parents:
                continue
            name = display_path(resolved, [root])
            if _kind_ok(resolved, want):
                return resolved, name
            if resolved.exists():  # inside a root: saying what it is reveals nothing outside
                raise UploadError(f"{name} is not a {want}.")
    raise not_found
