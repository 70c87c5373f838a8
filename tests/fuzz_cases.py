"""Seeded mutations of valid images, zips and CSVs, shared by tests/test_fuzz_uploads.py and
bench/bench_hardening.py. Every case must end in a result or an ``UploadError``, nothing else."""

from __future__ import annotations

import gzip
import io
import zipfile
from typing import Callable, Iterator

import numpy as np
from PIL import Image

IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


def seed_image(fmt: str, seed: int = 0) -> bytes:
    """A small real image in fmt: a gradient with noise, so every codec has structure to damage."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:24, 0:32]
    arr = np.stack([x * 8, y * 10, (x + y) * 4], axis=-1).astype(np.uint8) ^ rng.integers(0, 32, (24, 32, 3),
                                                                                           dtype=np.uint8)
    im = Image.fromarray(arr, "RGB")
    if fmt == "GIF":
        im = im.convert("P")
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random damage: flipped bytes, a cut, inserted or deleted bytes, a mangled header, or
    a chunk repeated; often two of them."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 3))):
        kind = int(rng.integers(0, 6))
        n = len(out)
        if n == 0:
            break
        if kind == 0:  # flip a few bytes anywhere
            for pos in rng.integers(0, n, int(rng.integers(1, 9))):
                out[pos] ^= int(rng.integers(1, 256))
        elif kind == 1:  # truncate
            del out[int(rng.integers(1, n)) if n > 1 else 0:]
        elif kind == 2:  # insert random bytes
            pos = int(rng.integers(0, n))
            out[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        elif kind == 3:  # delete a span
            pos = int(rng.integers(0, n))
            del out[pos:pos + int(rng.integers(1, 64))]
        elif kind == 4:  # header fields: sizes, bit depths, offsets
            for pos in rng.integers(0, min(n, 64), int(rng.integers(1, 5))):
                out[pos] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(0, 256))]))
        else:  # repeat a chunk
            pos = int(rng.integers(0, n))
            chunk = out[pos:pos + int(rng.integers(1, 256))]
            out[pos:pos] = chunk * int(rng.integers(1, 4))
    return bytes(out)


def cats_dogs_zip(train: int = 3, validation: int = 1, extra: dict[str, bytes] | None = None) -> bytes:
    """A valid cats/dogs zip (train/validation layout, ``train``/``validation`` JPEGs per class),
    with ``extra`` files (name under set/ -> bytes) beside the images."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for split, n in (("train", train), ("validation", validation)):
            for cls in ("cats", "dogs"):
                for i in range(n):
                    zf.writestr(f"set/{split}/{cls}/{cls[:-1]}.{i}.jpg", seed_image("JPEG", i))
        for name, payload in (extra or {}).items():
            zf.writestr(f"set/{name}", payload)
    return buf.getvalue()


def seed_zip() -> bytes:
    """A small valid cats/dogs zip with a text file beside the images (the fuzzer's seed)."""
    return cats_dogs_zip(3, 1, {"readme.txt": b"hello"})


def seed_csv(gzipped: bool = False) -> bytes:
    rows = ["date_time,traffic_volume,temp"] + [f"2016-01-01 {h:02d}:00:00,{1000 + 37 * h},{270 + h / 10}"
                                                for h in range(24)]
    raw = ("\n".join(rows) + "\n").encode()
    return gzip.compress(raw, mtime=0) if gzipped else raw


def cases(kind: str, n: int, seed: int = 0) -> Iterator[bytes]:
    """n seeded mutations of the seed file(s) of one kind: an image format name, "zip" or "csv"."""
    rng = np.random.default_rng([seed, sum(map(ord, kind))])
    if kind == "zip":
        seeds = [seed_zip()]
    elif kind == "csv":
        seeds = [seed_csv(False), seed_csv(True)]
    else:
        seeds = [seed_image(kind, 0), seed_image(kind, 1)]
    for i in range(n):
        yield mutate(seeds[i % len(seeds)], rng)


def run_cases(kind: str, n: int, call: Callable[[bytes, int], object], expected: type[BaseException],
              seed: int = 0) -> list[tuple[int, str]]:
    """Feed every case to call(data, index); return (index, 'Type: message') of each that raised
    anything but ``expected``."""
    escaped = []
    for i, data in enumerate(cases(kind, n, seed)):
        try:
            call(data, i)
        except expected:
            pass
        except Exception as exc:  # noqa: BLE001 - exactly what the fuzz looks for
            escaped.append((i, f"{type(exc).__name__}: {exc}"[:200]))
    return escaped
