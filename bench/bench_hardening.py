"""Hardening figures for README (issue 11): what hostile uploads cost the server now.

- peak memory growth while refusing a 10 MB gzip bomb (goal: under 300 MB), in a fresh process;
- seconds to refuse a 9.9 MB CSV with 1,000,000 columns;
- bytes written for a small zip padded with 380 MB (goal: only its images);
- fuzz cases tried and escaped (goal: 0), with the code before this branch for comparison;
- the Tricks page with sh_n=es_n=pr_n=60000: first run and rerun (needs the full MNIST).

Usage: DNN2_DATA_DIR=../shared/data .venv/bin/python bench/bench_hardening.py [--skip-tricks]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fuzz_cases import IMAGE_FORMATS, run_cases, seed_image  # noqa: E402

from dnn2core import catsdogs as cd  # noqa: E402
from dnn2core import uploads  # noqa: E402

BASE_COMMIT = "0248e64"  # the code before the hardening branch

_CHILD = r"""
import resource, sys
sys.path.insert(0, sys.argv[1])
import pandas  # noqa: F401 - imported before the baseline
from dnn2core import uploads
data = open(sys.argv[2], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    uploads.read_table(data)
    outcome = "read"
except uploads.UploadError as exc:
    outcome = "refused: " + str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024, outcome)
"""


MEMBER_UNPACKED = 100 * 1024 * 1024


def gzip_bomb(target_bytes: int = 10 * 1024 * 1024 - 4096) -> tuple[bytes, int]:
    """(file, bytes it unpacks to): repeated gzip members of 100 MB of CSV-looking text each,
    about 10 MB (just under the upload limit) unpacking to about 1,000 times that."""
    member = gzip.compress(b"0," * (MEMBER_UNPACKED // 2), compresslevel=9, mtime=0)
    copies = target_bytes // len(member)
    return member * copies, copies * MEMBER_UNPACKED


def bomb_row() -> str:
    bomb, unpacked = gzip_bomb()
    with tempfile.NamedTemporaryFile(suffix=".csv.gz", delete=False) as f:
        f.write(bomb)
    try:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), f.name], capture_output=True, text=True,
                             check=True).stdout.split(maxsplit=1)
    finally:
        os.unlink(f.name)
    return (f"| gzip bomb: {len(bomb) / 1e6:.1f} MB .csv.gz unpacking to {unpacked / 1e9:.1f} GB | "
            f"peak RSS growth **{float(out[0]):.0f} MB** | {out[1].strip()[:70]} |")


def wide_row() -> str:
    n = 1_000_000
    data = (",".join(f"c{i}" for i in range(n)) + "\n").encode()
    data += b",".join([b"1"] * n)[: max(0, 9_900_000 - len(data))] + b"\n"
    t0 = time.perf_counter()
    try:
        uploads.read_table(data, max_bytes=20 * 1024 * 1024)
        outcome = "read"
    except uploads.UploadError as exc:
        outcome = "refused: " + str(exc)
    return (f"| CSV of {len(data) / 1e6:.1f} MB, {n:,} columns | refused in **{time.perf_counter() - t0:.3f} s** | "
            f"{outcome[:70]} |")


def padded_zip(padding: int, pad_name: str = "set/padding.bin", magic: bytes = b"") -> tuple[bytes, int]:
    buf = io.BytesIO()
    image_bytes = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for split, n in (("train", 10), ("validation", 2)):
            for cls in ("cats", "dogs"):
                for i in range(n):
                    img = seed_image("JPEG", i)
                    image_bytes += len(img)
                    zf.writestr(f"set/{split}/{cls}/{cls[:-1]}.{i}.jpg", img)
        if padding:
            zf.writestr(pad_name, magic + b"\0" * (padding - len(magic)))
    return buf.getvalue(), image_bytes


def zip_rows() -> list[str]:
    rows = []
    mb380 = 380 * 1024 * 1024
    variants = [("380 MB of zeros in padding.bin", "set/padding.bin", b""),
                ("380 MB named padding.jpg", "set/train/cats/padding.jpg", b""),
                ("380 MB padding.jpg starting like a JPEG", "set/train/cats/padding.jpg", b"\xff\xd8\xff\xe0")]
    for label, name, magic in variants:
        data, image_bytes = padded_zip(mb380, name, magic)
        with tempfile.TemporaryDirectory(prefix="dnn2-bench-") as tmp:
            try:
                folder = cd.folder_from_zip(data, Path(tmp) / "zip", quota_left=uploads.SESSION_DISK_QUOTA)
                outcome = f"{len(folder.train)} + {len(folder.validation)} images"
            except uploads.UploadError as exc:
                outcome = "refused: " + str(exc)[:50]
            written = uploads.folder_bytes(tmp)
        rows.append(f"| {len(data) / 1e6:.2f} MB zip, {label} | **{written / 1e6:.2f} MB** written "
                    f"(its images: {image_bytes / 1e6:.2f} MB) | {outcome} |")
    return rows


def _old_module(name: str, path: str):
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASE_COMMIT}:{path}"], capture_output=True,
                            text=True, check=True).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    exec(compile(source, f"{BASE_COMMIT}:{path}", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


def fuzz_rows(n_images: int, n_zips: int, n_csvs: int) -> list[str]:
    old_up = _old_module("old_uploads", "dnn2core/uploads.py")
    old_cd = _old_module("old_catsdogs", "dnn2core/catsdogs.py")
    rows = []
    with tempfile.TemporaryDirectory(prefix="dnn2-bench-") as tmp:
        for kind, n, new, old, old_error in (
            *[(fmt, n_images, lambda d, i: uploads.open_image(d, max_pixels=1_000_000),
               lambda d, i: old_up.open_image(d, max_pixels=1_000_000), old_up.UploadError) for fmt in IMAGE_FORMATS],
            ("zip", n_zips, lambda d, i: uploads.extract_zip(d, Path(tmp) / f"new{i}"),
             lambda d, i: old_cd.extract_zip(d, Path(tmp) / f"old{i}", min_per_class=1), ValueError),
            ("csv", n_csvs, lambda d, i: uploads.read_table(d), lambda d, i: old_up.read_table(d), old_up.UploadError),
        ):
            escaped = run_cases(kind, n, new, uploads.UploadError)
            before = run_cases(kind, n, old, old_error)
            kinds = sorted({e.split(":")[0] for _, e in before})
            rows.append(f"| {kind} | {n} | **{len(escaped)}** | {len(before)} ({', '.join(kinds)[:60]}) |")
    return rows


def tricks_rows() -> list[str]:
    from streamlit.testing.v1 import AppTest

    os.environ.setdefault("DNN2_APPTEST", "1")
    os.environ.setdefault("DNN2_OFFLINE", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for k in ("sh_n", "es_n", "pr_n"):
        at.query_params[k] = "60000"
    at.switch_page("pages/tricks.py")
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    if at.exception:
        return [f"| Tricks page, 60,000 digits | failed: {at.exception[0].value[:60]} | |"]
    reruns = []
    for _ in range(3):
        t0 = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - t0)
    used = at.select_slider(key="tricks.sh_n").value
    return [f"| Tricks page, sh_n=es_n=pr_n=60000 ({used:,} digits) | first run {first:.2f} s | "
            f"rerun median **{sorted(reruns)[1]:.2f} s** |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="fuzz cases per image format")
    parser.add_argument("--zips", type=int, default=300)
    parser.add_argument("--csvs", type=int, default=300)
    parser.add_argument("--skip-tricks", action="store_true")
    args = parser.parse_args()

    print("| hostile upload | cost now | outcome |\n|---|---|---|", flush=True)
    print(bomb_row(), flush=True)
    print(wide_row(), flush=True)
    for row in zip_rows():
        print(row, flush=True)
    print("\n| fuzz kind | cases | escaped now | escaped before this branch |\n|---|---:|---:|---|", flush=True)
    for row in fuzz_rows(args.images, args.zips, args.csvs):
        print(row, flush=True)
    if not args.skip_tricks:
        print("\n| page | first run | rerun |\n|---|---|---|", flush=True)
        for row in tricks_rows():
            print(row, flush=True)


if __name__ == "__main__":
    main()
