"""Pretrained convolutional bases (VGG16, MobileNetV2): one loader with one set of rules.

Why this module exists: the cats/dogs page and "Inside the network" both need the ImageNet
VGG16 base, and they used to load it by two different rules (one downloaded, one did not; one
read ``DNN2_VGG16_WEIGHTS`` first, one last). Here:

- ``find_weights`` looks for the ImageNet file: the administrator's environment variable
  (``DNN2_VGG16_WEIGHTS``), then Keras' own cache (``KERAS_HOME``/models). Never downloads.
- ``choose_weights`` decides which weights a base gets without building it (the web process), and
  ``load_choice`` / ``cached_base`` build it where it is used (a worker that trains, a page that
  looks inside). ``load_base(arch, "imagenet")`` does both: it uses that file, or downloads it
  (short timeout) when asked;
  a learner-typed weights file must resolve under the allowed roots (see
  ``uploads.resolve_server_path``) and end in ``.h5``; loading only reads weights (no code runs).
  When no weights can be had, the base has random weights and ``WeightsInfo`` says so, in words
  that name files relative to their root, never by their server path.

TensorFlow and Keras are imported inside functions only.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from dnn2core import data as data_mod
from dnn2core import uploads

if TYPE_CHECKING:  # pragma: no cover
    import keras


@dataclass(frozen=True)
class BaseSpec:
    """A pretrained convolutional base the pages offer (VGG16 always; MobileNetV2 as a lighter extra)."""

    arch: str
    label: str
    weights_file: str  # Keras' own cache name under ~/.keras/models
    url: str
    pooling: str  # how a head reads the base's output: "flatten" (the course) or "average"
    env: str  # environment variable (set by the administrator) naming a weights file


BASES = {
    "vgg16": BaseSpec("vgg16", "VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                      "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                      "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "flatten", "DNN2_VGG16_WEIGHTS"),
    "mobilenet_v2": BaseSpec("mobilenet_v2", "MobileNetV2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                             "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
                             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", "average",
                             "DNN2_MOBILENET_WEIGHTS"),
}
WEIGHTS_SUFFIXES = (".h5", ".hdf5")  # Keras application weights; ".weights.h5" ends in .h5 too


def spec(arch: str) -> BaseSpec:
    if arch not in BASES:
        raise ValueError(f"Unknown base {arch!r}; choose one of {list(BASES)}.")
    return BASES[arch]


def keras_models_dir() -> Path:
    """Where Keras keeps application weights (``KERAS_HOME``/models, default ~/.keras/models)."""
    return data_mod.keras_home() / "models"


def _application(arch: str):
    import keras

    return keras.applications.vgg16.VGG16 if arch == "vgg16" else keras.applications.mobilenet_v2.MobileNetV2


def preprocess(arch: str, x):
    """The base's own input convention on 0-255 RGB, as ops inside the model (VGG16: RGB->BGR minus
    the ImageNet means; MobileNetV2: scaled to -1..1)."""
    import keras

    if arch == "vgg16":
        return keras.applications.vgg16.preprocess_input(x)
    return keras.applications.mobilenet_v2.preprocess_input(x)


def build_base(arch: str = "vgg16", weights: str | None = None, input_shape: Sequence[int] | None = None,
               include_top: bool = False) -> "keras.Model":
    """The plain Keras application (no head). ``input_shape=None`` keeps the image size open so one
    shared base serves every size (and Graetz's growing exemplars)."""
    kwargs: dict = dict(weights=weights, include_top=include_top)
    if include_top:
        kwargs["input_shape"] = tuple(input_shape) if input_shape else None
    else:
        kwargs["input_shape"] = tuple(input_shape) if input_shape else (None, None, 3)
    return _application(spec(arch).arch)(**kwargs)


@dataclass(frozen=True)
class WeightsInfo:
    """Whether a base is pretrained, and where the weights came from (or why not), for learners."""

    arch: str
    pretrained: bool
    source: str  # "file", "Keras cache", "DNN2_VGG16_WEIGHTS" (the env variable), "download", "random"
    location: str = ""  # named relative to its root ("the Keras cache/models/…"), never a server path
    message: str = ""

    @property
    def label(self) -> str:
        name = spec(self.arch).label
        return f"{name} (ImageNet weights)" if self.pretrained else f"{name} (RANDOM weights, not pretrained)"


def how_to_get_weights(arch: str = "vgg16") -> str:
    s = spec(arch)
    return (f"Ask the server's administrator to copy {s.weights_file} (from {s.url}) into Keras' cache "
            f"(KERAS_HOME/models) or to set {s.env} to the file's location.")


def find_weights(arch: str = "vgg16") -> tuple[Path | None, str, str]:
    """(path, source, reason): the ImageNet weights on this server, or None and why not. Never downloads.

    The administrator's environment variable wins over Keras' cache."""
    s = spec(arch)
    env = os.environ.get(s.env, "").strip()
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return p, s.env, f"ImageNet weights from {s.env}."
        return None, "random", f"{s.env} names a file that does not exist. " + how_to_get_weights(arch)
    cached = keras_models_dir() / s.weights_file
    if cached.is_file():
        return cached, "Keras cache", f"ImageNet weights from the Keras cache ({s.weights_file})."
    return None, "random", f"The ImageNet weights for {s.label} are not on this server. " + how_to_get_weights(arch)


RANDOM_BASE_SEED = 1234  # a base without pretrained weights is the same in every process (see build_frozen)


def build_frozen(arch: str, weights_path: str | Path | None) -> "keras.Model":
    """A frozen base from a weights file, or random weights when ``weights_path`` is None.

    Random weights are drawn from a fixed seed, so the web process and a worker build the same random
    base: a head trained on one's features still reads the other's (the learner's photo), and the
    feature cache can be shared. Raises when the file is not weights for ``arch``."""
    import keras

    from dnn2core.training import BUILD_LOCK  # Keras model construction is not thread-safe

    with BUILD_LOCK:
        if weights_path is None:
            keras.utils.set_random_seed(RANDOM_BASE_SEED)
        base = build_base(arch, str(weights_path) if weights_path is not None else None)
    base.trainable = False
    return base


@dataclass(frozen=True)
class WeightsChoice:
    """Which weights a base gets, decided without building it (cheap, in the web process) and loaded
    where the job trains (a worker process): the file, or None for random weights, and the words."""

    path: str | None
    info: WeightsInfo

    @property
    def key(self) -> str:
        """These very weights, for caches: the file's name, size and mtime, or the fixed random seed."""
        if self.path is None:
            return f"{self.info.arch}:random:{RANDOM_BASE_SEED}"
        try:
            st = Path(self.path).stat()
            return f"{self.info.arch}:{self.path}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            return f"{self.info.arch}:{self.path}:missing"


def choose_weights(arch: str = "vgg16", weights: str | None = "imagenet", *, download: bool = True,
                   download_timeout: float | None = None, roots: Sequence[uploads.Root] | None = None
                   ) -> WeightsChoice:
    """Where a base's weights come from, by the rules in this module's docstring, without building it.

    A file found here may still fail to load (a damaged file): ``load_choice`` then says so."""
    s = spec(arch)

    def random(message: str) -> WeightsChoice:
        return WeightsChoice(None, WeightsInfo(arch, False, "random", "", message))

    if weights in (None, "", "random"):
        return random("Random weights, as asked.")
    if weights != "imagenet":
        roots = uploads.allowed_roots() if roots is None else roots
        try:
            path, name = uploads.resolve_server_path(str(weights), roots, want="file")
        except uploads.UploadError as exc:
            return random(f"{exc} " + how_to_get_weights(arch))
        if not path.name.lower().endswith(WEIGHTS_SUFFIXES):
            return random(f"{name} is not a Keras weights file (.h5). " + how_to_get_weights(arch))
        return WeightsChoice(str(path), WeightsInfo(arch, True, "file", name))
    path, source, reason = find_weights(arch)
    if path is not None:
        where = s.env if source == s.env else f"the Keras cache/models/{s.weights_file}"
        return WeightsChoice(str(path), WeightsInfo(arch, True, source, where))
    if not download or os.environ.get(s.env, "").strip():  # the administrator's file is missing: say so
        return random(reason)
    cached = keras_models_dir() / s.weights_file
    if data_mod.download(s.url, cached, timeout=download_timeout) is None:
        why = "downloads are off (DNN2_OFFLINE)" if data_mod.offline() else "the download failed (no internet?)"
        return random(f"The ImageNet weights are not on this server and {why}. " + how_to_get_weights(arch))
    return WeightsChoice(str(cached), WeightsInfo(arch, True, "download", f"the Keras cache/models/{s.weights_file}"))


def damaged_weights(info: WeightsInfo) -> WeightsInfo:
    """The words for a weights file that was found but would not load."""
    s = spec(info.arch)
    return WeightsInfo(info.arch, False, "random", "", f"{info.location} could not be loaded as {s.label} weights "
                       "(wrong network or a damaged file). " + how_to_get_weights(info.arch))


def load_choice(choice: WeightsChoice) -> tuple["keras.Model", WeightsInfo]:
    """Build the frozen base a ``WeightsChoice`` names; a file that will not load gives random weights and
    says why (h5py and Keras raise many types for a wrong or damaged file)."""
    if choice.path is None:
        return build_frozen(choice.info.arch, None), choice.info
    try:
        return build_frozen(choice.info.arch, choice.path), choice.info
    except Exception:  # noqa: BLE001
        return build_frozen(choice.info.arch, None), damaged_weights(choice.info)


def load_base(arch: str = "vgg16", weights: str | None = "imagenet", *, download: bool = True,
              download_timeout: float | None = None, roots: Sequence[uploads.Root] | None = None
              ) -> tuple["keras.Model", WeightsInfo]:
    """A frozen base with open image size, and where its weights came from.

    weights: "imagenet" (found by ``find_weights``; downloaded into Keras' cache with a short
    timeout when ``download``), None/"random", or a path a learner typed, which must resolve under
    ``roots`` (default ``uploads.allowed_roots()``) and end in .h5. Whatever goes wrong, the base
    has random weights and the message says why without echoing server paths or exception text."""
    return load_choice(choose_weights(arch, weights, download=download, download_timeout=download_timeout,
                                      roots=roots))


_LOADED: "OrderedDict[str, tuple[keras.Model, WeightsInfo]]" = OrderedDict()
_LOADED_LOCK = threading.Lock()
MAX_LOADED = len(BASES) + 1  # each architecture's ImageNet base, plus one learner's weights file


def cached_base(choice: WeightsChoice) -> tuple["keras.Model", WeightsInfo]:
    """This process's frozen base for ``choice``, built once and shared read-only (the newest
    ``MAX_LOADED``): the web process's pages and a worker's jobs each load a base once, not per run."""
    key = choice.key
    with _LOADED_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
    loaded = load_choice(choice)  # outside the lock: seconds; two first callers may both build it once
    with _LOADED_LOCK:
        _LOADED[key] = loaded
        _LOADED.move_to_end(key)
        while len(_LOADED) > MAX_LOADED:
            _LOADED.popitem(last=False)
    return loaded
