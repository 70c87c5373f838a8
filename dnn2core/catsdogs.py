"""Cats vs dogs (Videos 3 and 4): real image folders, a checked input pipeline, the course's networks.

Why this module exists: the same binary task is solved three ways (from scratch, on a frozen
pretrained base, fine-tuned), so data, networks and the training plan must be identical for the
page, the tests and the benchmark.

- Data come from a real folder (``DNN2_DATA_DIR``, a path, an uploaded zip, or Google's
  ``cats_and_dogs_filtered.zip`` downloaded into the Keras cache). There is no fake dataset:
  when nothing is found, ``how_to_get_images()`` says how to get some and what each way costs.
- Every image is checked by ``uploads.scan_images`` before TensorFlow sees it; corrupt,
  truncated, non-RGB, huge or unsupported files are skipped and counted, so one bad JPEG never
  kills a run. Zips are unpacked by ``uploads.extract_zip`` (only images, within limits).
- Pretrained bases come from ``pretrained.cached_base`` and are only read; every learner trains a
  copy (``copy_base``), so one learner's fine-tuning never changes another's base.
- Folders are named in messages relative to their root ("the zip", "the data folder/…"),
  never by their server path.
- On CPU the frozen base's features are extracted once (``FeatureStore``, on disk and shared by
  every worker) and only the small head is trained on them: the course's "fast feature extraction".
- A job is a ``CatsDogsRecipe``: the page decides the settings and the weights; the worker process
  that trains it decodes the photos, loads the bases and extracts the features, so the web process
  only serves pages.

TensorFlow and Keras are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from dnn2core import data as data_mod
from dnn2core import uploads
from dnn2core.data import Provenance
from dnn2core.pretrained import BASES, WeightsChoice, WeightsInfo, build_base, preprocess
from dnn2core.pretrained import spec as _spec
from dnn2core.training import BuiltRuns, JobStopped, ModelRun, PlannedRun, report_phase, stop_requested_now
from dnn2core.uploads import MAX_ZIP_BYTES, UploadError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import pandas
    import tensorflow as tf

CLASS_NAMES = ("cat", "dog")  # label 0 = cat, 1 = dog (alphabetical, as image_dataset_from_directory)
FILTERED_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
FILTERED_ZIP = "cats_and_dogs_filtered.zip"
FILTERED_MB = 65  # size of Google's zip
LOCAL_SUBDIRS = ("", "cats_and_dogs", "cats_and_dogs_filtered")
IMAGE_SUFFIXES = uploads.ZIP_IMAGE_SUFFIXES
MIN_IMAGES_PER_CLASS = 10  # fewer than this per class cannot train and validate anything
SUBSET_TRAIN = 2000  # the course's (and Chollet's) small training set: 1,000 cats + 1,000 dogs
MAX_IN_MEMORY_BYTES = 1_500_000_000  # decoded images or features above this stream instead of being held
IMAGE_SIZES = (64, 96, 128, 150, 180, 224)
MIN_DEEPER_SIZE = 78  # the deeper scratch net's last conv needs at least this input


# =============================================================================== folders and layouts


@dataclass(frozen=True)
class ImageList:
    """Image files with labels (0 cat, 1 dog), in a fixed order."""

    paths: tuple[str, ...] = ()
    labels: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> tuple[int, int]:
        dogs = int(sum(self.labels))
        return len(self.labels) - dogs, dogs

    def balanced(self, n: int | None) -> "ImageList":
        """The first n/2 cats and n/2 dogs (all when n is None or larger): the same images on every run."""
        if n is None or n >= len(self):
            return self
        per_class = max(1, n // 2)
        keep, seen = [], [0, 0]
        for p, y in zip(self.paths, self.labels):
            if seen[y] < per_class:
                keep.append((p, y))
                seen[y] += 1
        return ImageList(tuple(p for p, _ in keep), tuple(y for _, y in keep))

    def without(self, drop: Iterable[str]) -> "ImageList":
        drop = set(drop)
        pairs = [(p, y) for p, y in zip(self.paths, self.labels) if p not in drop]
        return ImageList(tuple(p for p, _ in pairs), tuple(y for _, y in pairs))


@dataclass(frozen=True)
class CatsDogsFolder:
    """A recognised image folder: its layout and the train/validation split it implies."""

    root: str
    layout: str  # "train/validation folders" or "Kaggle file names"
    train: ImageList
    validation: ImageList
    note: str = ""  # e.g. how a validation split was made
    name: str = ""  # how messages name it ("the zip", "the data folder/cats_and_dogs"), never a server path
    digest: str = ""  # fingerprint of every image's name, size and mtime: caches key on it, not on the path

    @property
    def full_train_size(self) -> int:
        return len(self.train)

    def describe(self) -> str:
        tc, td = self.train.counts()
        vc, vd = self.validation.counts()
        return (f"{len(self.train):,} training images ({tc:,} cats, {td:,} dogs) and {len(self.validation):,} "
                f"validation images ({vc:,} cats, {vd:,} dogs), {self.layout} layout"
                + (f"; {self.note}" if self.note else ""))


_KAGGLE_NAME = re.compile(r"^(cat|dog)\.(\d+)\.(jpe?g|png|bmp|gif)$", re.IGNORECASE)


def _number_key(path: Path) -> tuple:
    nums = re.findall(r"\d+", path.name)
    return (int(nums[-1]) if nums else -1, path.name)


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".")), key=_number_key)


def _class_dir(parent: Path, cls: str) -> Path | None:
    for name in (cls + "s", cls, cls.capitalize() + "s", cls.capitalize()):
        if (parent / name).is_dir():
            return parent / name
    return None


def _split_off_validation(train: dict[int, list[Path]], fraction: float = 0.2, cap: int = 2500) -> tuple[dict, dict]:
    """Last ``fraction`` of each class (by file number, capped) for validation: deterministic."""
    tr, va = {}, {}
    for y, files in train.items():
        n_val = min(cap, max(1, int(round(len(files) * fraction)))) if len(files) > 1 else 0
        tr[y], va[y] = files[: len(files) - n_val], files[len(files) - n_val:]
    return tr, va


def _interleave(per_class: dict[int, list[Path]]) -> ImageList:
    """Cat, dog, cat, dog, ...: a balanced prefix of any length (the course's shuffling advice)."""
    cats, dogs = per_class.get(0, []), per_class.get(1, [])
    paths, labels = [], []
    for i in range(max(len(cats), len(dogs))):
        for y, files in ((0, cats), (1, dogs)):
            if i < len(files):
                paths.append(str(files[i]))
                labels.append(y)
    return ImageList(tuple(paths), tuple(labels))


def _digest(root: Path, *lists: ImageList) -> str:
    """SHA-256 of each image's path (relative to root), size and modification time: a different set
    in the same folder (a re-uploaded zip with as many files) gets a different key."""
    h = hashlib.sha256()
    for images in lists:
        for p, y in zip(images.paths, images.labels):
            try:
                st = os.stat(p)
                h.update(f"{os.path.relpath(p, root)}\0{y}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


def _folder(root: Path, layout: str, train: dict[int, list[Path]], val: dict[int, list[Path]],
            note: str) -> CatsDogsFolder:
    tr, va = _interleave(train), _interleave(val)
    return CatsDogsFolder(str(root), layout, tr, va, note, digest=_digest(root, tr, va))


def _try_split_layout(root: Path) -> CatsDogsFolder | None:
    train_dir = root / "train"
    if not train_dir.is_dir():
        return None
    train_cls = {y: _class_dir(train_dir, c) for y, c in enumerate(CLASS_NAMES)}
    if any(d is None for d in train_cls.values()):
        return None
    train = {y: _images_in(d) for y, d in train_cls.items()}
    val_dir = next((root / n for n in ("validation", "val", "valid") if (root / n).is_dir()), None)
    note = ""
    val: dict[int, list[Path]] = {}
    if val_dir is not None:
        val_cls = {y: _class_dir(val_dir, c) for y, c in enumerate(CLASS_NAMES)}
        if all(d is not None for d in val_cls.values()):
            val = {y: _images_in(d) for y, d in val_cls.items()}
    if not val or not all(val.values()):
        train, val = _split_off_validation(train)
        note = "no validation folder: the last 20% of each class's training images validate"
    return _folder(root, "train/validation folders", train, val, note)


def _try_kaggle_layout(root: Path) -> CatsDogsFolder | None:
    for folder in (root, root / "train"):
        files = {0: [], 1: []}
        for p in _images_in(folder):
            m = _KAGGLE_NAME.match(p.name)
            if m:
                files[CLASS_NAMES.index(m.group(1).lower())].append(p)
        if files[0] or files[1]:
            train, val = _split_off_validation(files)
            return _folder(folder, "Kaggle file names", train, val,
                           "the last 20% of each class (by file number, at most 2,500) validate")
    return None


LAYOUT_HELP = ("Expected either train/cats, train/dogs, validation/cats, validation/dogs folders of images "
               "(Google's cats_and_dogs_filtered layout) or Kaggle's file names cat.0.jpg, dog.0.jpg, … in one "
               "folder (Kaggle's dogs-vs-cats train.zip).")


def scan_layout(root: str | Path, *, min_per_class: int = MIN_IMAGES_PER_CLASS, name: str = "that path"
                ) -> CatsDogsFolder:
    """Recognise a cats/dogs folder (or the single folder inside it); ValueError says what is wrong.

    ``root`` must already be trusted (resolved under an allowed root, see ``uploads.resolve_server_path``);
    messages call it ``name`` and its subfolders relative to it, never by their server path."""
    root = Path(str(root))
    try:
        if root.is_file():
            raise ValueError(f"{name} is a file, not a folder.")
        if not root.is_dir():
            raise ValueError(f"There is no folder at {name}.")
        candidates = [root]
        subdirs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "__"))]
        candidates += [p for p in subdirs if p.name not in ("train", "validation", "val", "valid", "test")]
        for folder in candidates:
            found = _try_split_layout(folder) or _try_kaggle_layout(folder)
            if found is None:
                continue
            shown = name if folder == root else f"{name}/{folder.name}"
            tc, td = found.train.counts()
            vc, vd = found.validation.counts()
            if min(tc, td) < min_per_class or min(vc, vd) < 1:
                raise ValueError(
                    f"{shown} has too few images: {tc} cats and {td} dogs to train on, {vc} and {vd} to "
                    f"validate. At least {min_per_class} per class are needed to train, and some of each to validate.")
            inner = "" if Path(found.root) == root else "/" + Path(found.root).relative_to(root).as_posix()
            return replace(found, name=name + inner)
    except OSError:  # unreadable folders (e.g. /proc on a machine that allows server paths)
        raise ValueError(f"The server may not read {name}.") from None
    raise ValueError(f"No cats/dogs images found in {name}. {LAYOUT_HELP}")


def find_local_folder() -> CatsDogsFolder | None:
    """The first cats/dogs folder in DNN2_DATA_DIR (or its cats_and_dogs[_filtered] subfolders),
    then in the Keras cache (where the download lands)."""
    cache = data_mod.keras_cache_dir()
    roots = [data_mod.data_dir() / sub if sub else data_mod.data_dir() for sub in LOCAL_SUBDIRS]
    roots += [cache / "cats_and_dogs_filtered", cache / "cats_and_dogs_filtered_extracted" / "cats_and_dogs_filtered"]
    for root in roots:
        try:
            if not root.is_dir():
                continue
            found = _try_split_layout(root) or _try_kaggle_layout(root)
        except OSError:
            continue
        if found is not None and min(found.train.counts()) >= MIN_IMAGES_PER_CLASS:
            return replace(found, name=uploads.display_path(found.root, uploads.allowed_roots()))
    return None


def provenance_for(folder: CatsDogsFolder, source: str) -> Provenance:
    """Where the images came from; a set smaller than the course's 2,000 is labelled a sample."""
    complete = len(folder.train) >= SUBSET_TRAIN
    how = "" if complete else how_to_get_images_short()
    return Provenance("Cats vs dogs", source, complete, folder.describe(), how_to_get_full=how,
                      location=folder.name)


def how_to_get_images_short() -> str:
    return (f"For the course's 2,000 training images, download Google's {FILTERED_ZIP} (about {FILTERED_MB} MB) "
            "or put the images in the server's data folder (DNN2_DATA_DIR), in cats_and_dogs/.")


def how_to_get_images() -> list[tuple[str, str]]:
    """Each way to get real images and what it costs (shown when no images are available)."""
    return [
        ("Download Google's cats_and_dogs_filtered.zip",
         f"About {FILTERED_MB} MB from {FILTERED_URL}: 2,000 training and 1,000 validation JPEGs, the set the "
         "course's figures use. Needs internet on the server; saved once into the Keras cache for every learner."),
        ("A folder on the server",
         "Free and instant if the images are already there: put them in cats_and_dogs/ inside the server's data "
         "folder (DNN2_DATA_DIR), or type a folder's path inside it. Kaggle's full dogs-vs-cats train.zip (about 540 MB, "
         "25,000 images, a free Kaggle account) unpacked in such a folder enables the full-set toggle."),
        ("Upload a zip",
         f"At most {MAX_ZIP_BYTES // (1024 * 1024)} MB (the server's upload limit), i.e. a few hundred small JPEGs; "
         "kept for this session only. Layout: train/cats, train/dogs, validation/cats, validation/dogs, or Kaggle's "
         f"cat.N.jpg / dog.N.jpg names; at least {MIN_IMAGES_PER_CLASS} images per class."),
    ]


# =============================================================================== zip upload and download


def folder_from_zip(source: bytes | str | Path, dest: str | Path, *, min_per_class: int = MIN_IMAGES_PER_CLASS,
                    **limits: Any) -> CatsDogsFolder:
    """Extract a zip's images (``uploads.extract_zip``: only images, checked, within limits) and
    recognise their layout. On any problem the extracted files are removed and ``UploadError`` says why."""
    extracted = uploads.extract_zip(source, dest, **limits)
    try:
        return scan_layout(extracted.root, min_per_class=min_per_class, name="the zip")
    except ValueError as exc:
        shutil.rmtree(extracted.root, ignore_errors=True)
        raise UploadError(str(exc)) from None



def download_filtered(timeout: float | None = None) -> CatsDogsFolder | None:
    """Google's cats_and_dogs_filtered.zip into the Keras cache (once); None when offline or failing.

    Unpacked into a staging folder first, so a failed extraction never leaves a half set behind."""
    cache = data_mod.keras_cache_dir()
    target = cache / "cats_and_dogs_filtered"
    if target.is_dir():
        try:
            return scan_layout(target, name="the downloaded copy")
        except ValueError:
            shutil.rmtree(target, ignore_errors=True)
    zpath = cache / FILTERED_ZIP
    if not zpath.is_file():
        if data_mod.download(FILTERED_URL, zpath, timeout=timeout) is None:
            return None
    staging = cache / f".{target.name}.partial-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        uploads.extract_zip(zpath, staging, max_bytes=10**9, max_uncompressed=10**9)
        os.replace(staging / target.name, target)
        return scan_layout(target, name="the downloaded copy")
    except (UploadError, ValueError, OSError):
        zpath.unlink(missing_ok=True)  # a damaged download: try again next time
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# =============================================================================== the input pipeline


def _decode_fn(image_size: int):
    import tensorflow as tf

    def decode(path, label):
        raw = tf.io.read_file(path)
        img = tf.io.decode_image(raw, channels=3, expand_animations=False)
        img = tf.image.resize(img, (image_size, image_size))  # bilinear, as image_dataset_from_directory
        img = tf.cast(tf.clip_by_value(tf.round(img), 0.0, 255.0), tf.uint8)  # uint8: a quarter of the memory
        img.set_shape((image_size, image_size, 3))
        return img, label

    return decode


def make_dataset(images: ImageList, image_size: int, *, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                 cache: bool = True) -> "tf.data.Dataset":
    """tf.data pipeline over checked files: parallel decode + resize, cache (uint8), shuffle, batch, prefetch.

    Yields (float32 images in 0..255, float32 labels); the models rescale or preprocess themselves."""
    import tensorflow as tf

    if len(images) == 0:
        raise ValueError("No images to load.")
    ds = tf.data.Dataset.from_tensor_slices((list(images.paths), np.asarray(images.labels, dtype=np.float32)))
    ds = ds.map(_decode_fn(int(image_size)), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size)).map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(tf.data.AUTOTUNE)


def load_arrays(images: ImageList, image_size: int, batch_size: int = 64,
                on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode checked images once into uint8 arrays (n, s, s, 3) and float32 labels, via tf.data.
    ``on_batch`` gets the number of images of each decoded batch (for a progress bar)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((list(images.paths), np.asarray(images.labels, dtype=np.float32)))
    ds = ds.map(_decode_fn(int(image_size)), num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    xs, ys = [], []
    for x, y in ds.prefetch(tf.data.AUTOTUNE):
        xs.append(x.numpy())
        ys.append(y.numpy())
        if on_batch is not None:
            on_batch(len(ys[-1]))
    return np.concatenate(xs), np.concatenate(ys)


def images_bytes(n: int, image_size: int) -> int:
    return int(n) * int(image_size) ** 2 * 3


@dataclass
class Prepared:
    """Checked, decoded images for one (folder, size, train size, validation size) choice."""

    image_size: int
    train: ImageList
    validation: ImageList
    report: uploads.ScanReport
    x_train: np.ndarray | None  # None when the training set is too big to hold: it streams
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    seconds: float

    @property
    def in_memory(self) -> bool:
        return self.x_train is not None

    def train_inputs(self, batch_size: int, seed: int) -> dict:
        """fit() keyword arguments for the training images (arrays, or a streaming tf.data pipeline)."""
        if self.x_train is not None:
            return dict(x=self.x_train, y=self.y_train, batch_size=int(batch_size), shuffle=True)
        return dict(x=make_dataset(self.train, self.image_size, batch_size=batch_size, shuffle=True, seed=seed,
                                   cache=False))


def prepare(folder: CatsDogsFolder, image_size: int, n_train: int | None = SUBSET_TRAIN,
            n_val: int | None = None, on_progress: Callable[[int, int], None] | None = None) -> Prepared:
    """Pick balanced train/validation images, skip bad ones (counted), decode them once.
    ``on_progress`` gets (images decoded, images to decode)."""
    if int(image_size) < 32:
        raise ValueError("Images must be at least 32 pixels wide (VGG16's five poolings).")
    t0 = time.perf_counter()
    train, val = folder.train.balanced(n_train), folder.validation.balanced(n_val)
    r_train, r_val = uploads.scan_images(train.paths), uploads.scan_images(val.paths)
    report = r_train.merged(r_val)
    train, val = train.without(r_train.bad_paths()), val.without(r_val.bad_paths())
    for name, part in (("training", train), ("validation", val)):
        cats, dogs = part.counts()
        if min(cats, dogs) < 1:
            raise ValueError(f"After skipping unusable images, the {name} set has {cats} cats and {dogs} dogs: "
                             f"both classes are needed. {report.summary()}")
    held = images_bytes(len(train), image_size) <= MAX_IN_MEMORY_BYTES
    total, done = len(val) + (len(train) if held else 0), [0]

    def decoded(n: int) -> None:
        done[0] += n
        if on_progress is not None:
            on_progress(done[0], total)

    x_val, y_val = load_arrays(val, image_size, on_batch=decoded)
    if held:
        x_train, y_train = load_arrays(train, image_size, on_batch=decoded)
    else:
        x_train, y_train = None, np.asarray(train.labels, dtype=np.float32)
    return Prepared(int(image_size), train, val, report, x_train, y_train, x_val, y_val, time.perf_counter() - t0)


# =============================================================================== networks


def _compile(model: "keras.Model", learning_rate: float | None = None) -> "keras.Model":
    import keras

    opt = keras.optimizers.RMSprop() if learning_rate is None else keras.optimizers.RMSprop(learning_rate=learning_rate)
    model.compile(optimizer=opt, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def augmentation_layers(seed: int | None = None) -> "keras.Sequential":
    """Random flips, rotations and zooms (Chollet's recipe): active only while training."""
    import keras
    from keras import layers

    return keras.Sequential([layers.RandomFlip("horizontal", seed=seed), layers.RandomRotation(0.1, seed=seed),
                             layers.RandomZoom(0.2, seed=seed)], name="augmentation")


def build_catsdogs_scratch(input_shape: Sequence[int] = (150, 150, 3), deeper: bool = False, augmentation: bool = False,
                           dropout: float = 0.0, learning_rate: float | None = None) -> "keras.Model":
    """The course's from-scratch network (Conv2D 32/64/128) or its deeper variant (up to 512, four poolings).

    Augmentation and dropout are the two tricks the course names next; both off reproduces the text."""
    import keras
    from keras import layers

    input_shape = tuple(int(d) for d in input_shape)
    if deeper and min(input_shape[:2]) < MIN_DEEPER_SIZE:
        raise ValueError(f"The deeper network needs images of at least {MIN_DEEPER_SIZE} pixels (four poolings and "
                         f"five 3x3 convolutions); got {input_shape[0]}.")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"Dropout must be between 0 and 1 (exclusive), got {dropout}.")
    stack: list = [keras.Input(shape=input_shape)]
    if augmentation:
        stack.append(augmentation_layers())
    stack.append(layers.Rescaling(1.0 / 255))
    filters = (32, 64, 128, 256, 512) if deeper else (32, 64, 128)
    for i, f in enumerate(filters):
        stack.append(layers.Conv2D(filters=f, kernel_size=3, activation="relu"))
        if i < len(filters) - 1:
            stack.append(layers.MaxPooling2D(pool_size=2))
    stack.append(layers.Flatten())
    if dropout:
        stack.append(layers.Dropout(float(dropout)))
    stack.append(layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(stack, name="scratch_deeper" if deeper else "scratch")
    return _compile(model, learning_rate)


def _head(x, pooling: str):
    from keras import layers

    x = layers.Flatten()(x) if pooling == "flatten" else layers.GlobalAveragePooling2D()(x)
    return layers.Dense(1, activation="sigmoid", name="cat_or_dog")(x)


def build_transfer(arch: str = "vgg16", weights: str | None = "imagenet", input_shape: Sequence[int] = (224, 224, 3),
                   augmentation: bool = False, base: "keras.Model | None" = None,
                   learning_rate: float | None = None) -> "keras.Model":
    """Input -> [augmentation] -> preprocess_input -> frozen base -> Flatten/pool -> Dense(1, sigmoid)."""
    import keras

    spec = _spec(arch)
    input_shape = tuple(int(d) for d in input_shape)
    if base is None:
        base = build_base(arch, weights, input_shape)
    base.trainable = False
    inputs = keras.Input(shape=input_shape)
    x = augmentation_layers()(inputs) if augmentation else inputs
    x = preprocess(arch, x)
    x = base(x, training=False)  # keeps BatchNorm (MobileNetV2) in inference mode even when fine-tuned
    model = keras.Model(inputs, _head(x, spec.pooling), name=f"{arch}_transfer")
    return _compile(model, learning_rate)


def build_vgg16_transfer(weights: str | None = "imagenet", input_shape: Sequence[int] = (224, 224, 3),
                         augmentation: bool = False, base: "keras.Model | None" = None,
                         learning_rate: float | None = None) -> "keras.Model":
    """The course's combined model (functional API): 14,739,777 parameters, 25,089 trainable at 224 px."""
    return build_transfer("vgg16", weights, input_shape, augmentation, base, learning_rate)


def base_of(model: "keras.Model") -> "keras.Model":
    """The nested pretrained base inside a transfer model."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.name != "augmentation":
            return layer
    raise ValueError("This model has no nested pretrained base.")


def unfreeze_top(model: "keras.Model", n_layers: int = 4, learning_rate: float = 1e-5) -> "keras.Model":
    """Fine-tuning: the base's last ``n_layers`` become trainable, the rest stay frozen; recompile with a
    small learning rate (the course says so; its code passes "rmsprop", i.e. 1e-3: a slip)."""
    if int(n_layers) < 1:
        raise ValueError("Unfreeze at least one layer.")
    base = base_of(model)
    base.trainable = True
    for layer in base.layers[: -int(n_layers)]:
        layer.trainable = False
    return _compile(model, learning_rate)


def build_head(feature_shape: Sequence[int], pooling: str = "flatten", learning_rate: float | None = None) -> "keras.Model":
    """The head alone, trained on cached features (the fast path): same Dense layer as the combined model."""
    import keras

    inputs = keras.Input(shape=tuple(int(d) for d in feature_shape))
    return _compile(keras.Model(inputs, _head(inputs, pooling), name="head"), learning_rate)


def copy_base(base: "keras.Model") -> "keras.Model":
    """A private, frozen copy of a shared base: clone the architecture, copy the weights."""
    import keras

    clone = keras.models.clone_model(base)
    clone.set_weights(base.get_weights())
    clone.trainable = False
    return clone


def copy_model(model: "keras.Model") -> "keras.Model":
    """An independent copy of a trained model (fine-tuning it leaves the original as it was)."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def transfer_from_head(base: "keras.Model", head: "keras.Model", arch: str, image_size: int) -> "keras.Model":
    """The combined model with a head trained on cached features: same Dense weights, so it predicts the same."""
    model = build_transfer(arch, input_shape=(image_size, image_size, 3), base=base)
    model.get_layer("cat_or_dog").set_weights(head.get_layer("cat_or_dog").get_weights())
    return model


def feature_shape(arch: str, image_size: int) -> tuple[int, int, int]:
    """Output shape of the base for square images (VGG16: 224 -> 7x7x512)."""
    s = int(image_size)
    if arch == "vgg16":
        return (s // 32, s // 32, 512)
    side = math.ceil(s / 2)  # MobileNetV2's first conv ("same" padding), then four stride-2 stages whose
    for _ in range(4):  # padding, for an open input size, is fixed at (0, 1): floor halving
        side //= 2
    return (side, side, 1280)


def feature_extractor(base: "keras.Model", arch: str, image_size: int) -> "keras.Model":
    """Input -> preprocess -> base: a new wrapper each time, so the shared base is only read."""
    import keras

    inputs = keras.Input(shape=(int(image_size), int(image_size), 3))
    return keras.Model(inputs, base(preprocess(arch, inputs), training=False), name=f"{arch}_features")


def extract_features(base: "keras.Model", arch: str, x: np.ndarray, batch_size: int = 32,
                     out: np.ndarray | None = None) -> np.ndarray:
    """The frozen base's features of uint8 images, batch by batch (optionally into ``out``)."""
    extractor = feature_extractor(base, arch, x.shape[1])
    if out is None:
        out = np.empty((len(x), *feature_shape(arch, x.shape[1])), dtype=np.float32)
    for i in range(0, len(x), batch_size):
        out[i:i + batch_size] = extractor(x[i:i + batch_size].astype(np.float32), training=False)
    return out


# =============================================================================== features cache and training plan


class FeatureStore:
    """Frozen-base features of one image set, computed once (by the first job that needs them), then
    only read.

    With a ``folder`` they live on disk (``features_root()``): every worker process and every later
    job reads what the first one extracted, and the web process never holds them. Two jobs that
    need the same features at once take turns on a file lock: the second waits (Stop still
    works) and then reads. Without a folder they live in this object's memory (tests, a notebook)."""

    def __init__(self, arch: str, image_size: int, n_train: int, n_val: int, folder: str | Path | None = None) -> None:
        self.arch, self.image_size = arch, int(image_size)
        self.shape = feature_shape(arch, image_size)
        self.n_train, self.n_val = int(n_train), int(n_val)
        self.folder = Path(folder) if folder is not None else None
        self.seconds: float | None = None  # extraction time, train + validation, when this object did it
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._arrays is not None or (self.folder is not None and (self.folder / "val.npy").is_file())

    @property
    def x_train(self) -> np.ndarray:
        return self._load()[0]

    @property
    def x_val(self) -> np.ndarray:
        return self._load()[1]

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            if not self.ready:
                raise ValueError("The features have not been extracted yet.")
            arrays = (np.load(self.folder / "train.npy"), np.load(self.folder / "val.npy"))
            if arrays[0].shape != (self.n_train, *self.shape) or arrays[1].shape != (self.n_val, *self.shape):
                raise ValueError("The cached features do not match these images; they will be extracted again.")
            self._arrays = arrays
            os.utime(self.folder)  # recently used: the cache keeps it longest
        return self._arrays

    def fill(self, base: "keras.Model", x_train: np.ndarray, x_val: np.ndarray, batch_size: int = 32,
             should_stop: Callable[[], bool] | None = None,
             on_progress: Callable[[int, int], None] | None = None) -> bool:
        """Extract once; True if this call did the work (False: already there).

        ``should_stop`` is asked between batches (and while waiting for another job's extraction), so
        a Stop click or a spent budget ends it within one batch; nothing half-done is ever kept.
        ``on_progress`` gets (images done, images in all) after each batch: on a CPU this takes minutes."""
        with self._lock:
            if self.folder is None:
                if self._arrays is not None:
                    return False
                self._arrays = self._extract(base, x_train, x_val, batch_size, should_stop, on_progress, None)
                return True
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            with _folder_lock(self.folder, should_stop):
                if self.ready:
                    try:
                        self._load()
                        return False
                    except (ValueError, OSError):  # damaged or another set's: extract again
                        shutil.rmtree(self.folder, ignore_errors=True)
                        self._arrays = None
                tmp = self.folder.with_name(f".{self.folder.name}.{os.getpid()}.tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
                try:
                    self._extract(base, x_train, x_val, batch_size, should_stop, on_progress, tmp)
                    os.replace(tmp, self.folder)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            prune_features(self.folder.parent, keep=self.folder)
            self._load()
            return True

    def _extract(self, base, x_train, x_val, batch_size, should_stop, on_progress, folder: Path | None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """The features, in memory or written into ``folder``'s train.npy and val.npy."""
        t0 = time.perf_counter()
        total, done = len(x_train) + len(x_val), 0
        if on_progress is not None:
            on_progress(0, total)
        outs = []
        for x, name in ((x_train, "train"), (x_val, "val")):
            shape = (len(x), *self.shape)
            out = (np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=np.float32, shape=shape)
                   if folder is not None else np.empty(shape, dtype=np.float32))
            extractor = feature_extractor(base, self.arch, x.shape[1])
            for i in range(0, len(x), batch_size):
                if should_stop is not None and should_stop():
                    raise ExtractionStopped("Stopped during feature extraction; nothing was cached.")
                out[i:i + batch_size] = extractor(x[i:i + batch_size].astype(np.float32), training=False)
                done += len(x[i:i + batch_size])
                if on_progress is not None:
                    on_progress(done, total)
            outs.append(out)
        self.seconds = time.perf_counter() - t0
        for out in outs:  # on disk: written through before the folder is renamed into place
            if isinstance(out, np.memmap):
                out.flush()
        return outs[0], outs[1]


FEATURE_WAIT_S = 0.5  # how often a job waiting for another's extraction checks the lock (and Stop)


class _folder_lock:
    """An exclusive lock on ``<folder>.lock`` across processes (fcntl), waited for with Stop checks."""

    def __init__(self, folder: Path, should_stop: Callable[[], bool] | None) -> None:
        self.path = folder.with_name(folder.name + ".lock")
        self.should_stop = should_stop

    def __enter__(self) -> "_folder_lock":
        import fcntl

        self.file = open(self.path, "a+")
        waiting = False
        while True:
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if self.should_stop is not None and self.should_stop():
                    self.file.close()
                    raise ExtractionStopped("Stopped while another run extracted the same features.")
                if not waiting:
                    waiting = True
                    report_phase("waiting for another run extracting the same features", 0, 0)
                time.sleep(FEATURE_WAIT_S)

    def __exit__(self, *exc: Any) -> None:
        self.file.close()  # closing releases the lock


def features_root(store_root: str | Path) -> Path:
    """Where the feature cache lives: ``DNN2_FEATURES_DIR``, else beside the run store's runs."""
    env = os.environ.get("DNN2_FEATURES_DIR", "").strip()
    return Path(env).expanduser() if env else Path(store_root) / "features"


def features_max_bytes() -> int:
    """The feature cache's size on disk (``DNN2_FEATURES_MAX_MB``, default 4,096 MB): the least
    recently used sets are removed beyond it."""
    from dnn2core.env import env_number

    return int(env_number("DNN2_FEATURES_MAX_MB", 4096, whole=True, minimum=1)) * 1024 * 1024


def feature_folder(root: str | Path, weights_key: str, images_digest: str, image_size: int, n_train: int,
                   n_val: int) -> Path:
    """One set of features: these weights, these images, this size and these counts."""
    words = f"{weights_key}|{images_digest}|{int(image_size)}|{int(n_train)}|{int(n_val)}"
    return Path(root) / hashlib.sha256(words.encode()).hexdigest()[:24]


def prune_features(root: str | Path, keep: Path | None = None, max_bytes: int | None = None) -> int:
    """Remove the least recently used feature sets beyond ``max_bytes``; how many were removed. A
    set being written (its lock held) or ``keep`` is never removed."""
    import fcntl

    root = Path(root)
    limit = features_max_bytes() if max_bytes is None else int(max_bytes)
    sets = [(f.stat().st_mtime, f) for f in root.iterdir() if f.is_dir() and not f.name.startswith(".")]
    sizes = {f: sum(x.stat().st_size for x in f.iterdir() if x.is_file()) for _, f in sets}
    total, removed = sum(sizes.values()), 0
    for _, folder in sorted(sets):
        if total <= limit:
            break
        if keep is not None and folder == keep:
            continue
        with open(folder.with_name(folder.name + ".lock"), "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(folder, ignore_errors=True)
        total -= sizes[folder]
        removed += 1
    return removed


class ExtractionStopped(JobStopped):
    """Feature extraction was cut short by a stop request or a spent budget (the job ends "stopped")."""


def job_should_stop(job: Any) -> bool:
    """Whether a TrainingJob has been asked to stop (Stop click, budget, abandoned tab)."""
    return job is not None and job.should_stop() is not None


APPROACHES = ("From scratch", "VGG16 frozen", "VGG16 fine-tuned", "MobileNetV2 frozen")


@dataclass(frozen=True)
class RunSpec:
    """Everything the page chose for one training job (also the label of the run)."""

    approaches: tuple[str, ...] = ("From scratch", "VGG16 frozen")
    image_size: int = 150
    epochs: int = 5
    finetune_epochs: int = 2
    batch_size: int = 32
    deeper: bool = False
    scratch_augmentation: bool = False
    dropout: float = 0.0
    fast_path: bool = True  # frozen bases: train the head on cached features
    frozen_augmentation: bool = False  # needs the full model (features would be fixed)
    finetune_learning_rate: float = 1e-5
    seed: int = 0


@dataclass
class CatsDogsPlan:
    runs: list  # list[ModelRun]
    predictors: dict[str, Callable[[np.ndarray], np.ndarray]]  # run name -> uint8 images -> P(dog)
    notes: list[str]
    stores: dict[str, FeatureStore]
    kinds: dict[str, str]  # run name -> "scratch" | "frozen (cached features)" | "frozen (full model)" | "fine-tuned"


def run_name(approach: str, spec: RunSpec, info: WeightsInfo | None) -> str:
    name = approach
    if approach == "From scratch" and spec.deeper:
        name = "From scratch (deeper)"
    if info is not None and not info.pretrained:
        name += " (random weights)"
    return name


Trained = dict  # run name -> the model its job built (and trains in place); read by later runs and predictors


@dataclass(frozen=True)
class PlanStep:
    """One approach's run, how to ask its trained model about images, and what kind it is."""

    run: ModelRun
    predict: Callable[[np.ndarray], np.ndarray]  # uint8 images -> P(dog)
    kind: str


def _full_predictor(trained: Trained, name: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: trained[name].predict(x.astype(np.float32), verbose=0).ravel()


def _scratch_step(spec: RunSpec, fit: dict, trained: Trained) -> PlanStep:
    """The course's network trained from scratch (or its deeper variant)."""
    name = run_name("From scratch", spec, None)
    shape = (spec.image_size, spec.image_size, 3)

    def build():
        trained[name] = build_catsdogs_scratch(shape, spec.deeper, spec.scratch_augmentation, spec.dropout)
        return trained[name]

    return PlanStep(ModelRun(name, build, dict(fit, epochs=spec.epochs)), _full_predictor(trained, name), "scratch")


def _cached_frozen_step(spec: RunSpec, prepared: Prepared, arch: str, shared: "keras.Model", info: WeightsInfo,
                        store: FeatureStore, trained: Trained, should_stop: Callable[[], bool] | None) -> PlanStep:
    """The fast path: extract the frozen base's features once, then train only the head on them."""
    name = run_name(f"{BASES[arch].label} frozen", spec, info)

    paid: dict[str, float] = {}

    # The features exist only once ``extract`` has run (in the job's slot): fit reads them from there.
    fit = dict(x=None, y=prepared.y_train, batch_size=spec.batch_size, shuffle=True, epochs=spec.epochs,
               validation_data=None)

    def extract():  # outside the build lock: minutes on a CPU must not block other learners' builds
        progress = partial(report_phase, f"extracting {BASES[arch].label} features", unit="image")
        if store.fill(shared, prepared.x_train, prepared.x_val, should_stop=should_stop or stop_requested_now,
                      on_progress=progress):
            paid["seconds"] = float(store.seconds or 0.0)
        fit.update(x=store.x_train, validation_data=(store.x_val, prepared.y_val))

    def build():
        trained[name] = build_head(store.shape, BASES[arch].pooling)
        return trained[name]

    def predict(x):
        return trained[name].predict(extract_features(shared, arch, x), verbose=0).ravel()

    def evaluate(model):  # kept with the run: did this run pay for the extraction, and how long
        return {"extract_seconds": paid.get("seconds", 0.0)}

    return PlanStep(ModelRun(name, build, fit, evaluate=evaluate, prepare=extract), predict,
                    "frozen (cached features)")


def _full_frozen_step(spec: RunSpec, arch: str, shared: "keras.Model", info: WeightsInfo, fit: dict,
                      trained: Trained) -> PlanStep:
    """The frozen base inside the model (needed with augmentation): a private copy of the shared base."""
    name = run_name(f"{BASES[arch].label} frozen", spec, info)
    shape = (spec.image_size, spec.image_size, 3)

    def build():
        trained[name] = build_transfer(arch, input_shape=shape, augmentation=spec.frozen_augmentation,
                                       base=copy_base(shared))
        return trained[name]

    return PlanStep(ModelRun(name, build, dict(fit, epochs=spec.epochs)), _full_predictor(trained, name),
                    "frozen (full model)")


def _finetune_step(spec: RunSpec, arch: str, shared: "keras.Model", info: WeightsInfo, fit: dict,
                   trained: Trained) -> PlanStep:
    """Fine-tuning starts from the frozen run's trained model (a copy, so that one stays comparable)."""
    frozen_name = run_name(f"{BASES[arch].label} frozen", spec, info)
    name = run_name(f"{BASES[arch].label} fine-tuned", spec, info)

    def build():
        frozen = trained.get(frozen_name)
        if frozen is None:
            raise ValueError("Fine-tuning needs the frozen-base model, which did not train.")
        if frozen.name == "head":  # fast path: put the trained head on a private copy of the base
            model = transfer_from_head(copy_base(shared), frozen, arch, spec.image_size)
        else:
            model = copy_model(frozen)
        trained[name] = unfreeze_top(model, 4, spec.finetune_learning_rate)
        return trained[name]

    return PlanStep(ModelRun(name, build, dict(fit, epochs=spec.finetune_epochs)), _full_predictor(trained, name),
                    "fine-tuned")


def continued_runs(names: Iterable[str]) -> dict[str, str]:
    """Fine-tuned run -> the frozen run it continues (same base, same weights), for curves that
    carry on after the frozen epochs as in the course's figure."""
    names = list(names)
    out = {}
    for name in names:
        if " fine-tuned" in name:
            frozen = name.replace(" fine-tuned", " frozen")
            if frozen in names:
                out[name] = frozen
    return out


def validation_sample(prepared: Prepared, n: int = 64) -> dict[str, np.ndarray]:
    """A few validation images (uint8) and labels, kept with a run so that Inside the network can
    show its models real images; both classes, in the validation set's interleaved order."""
    n = min(n, len(prepared.y_val))
    x = np.clip(np.asarray(prepared.x_val[:n]), 0, 255).astype(np.uint8)
    return {"sample/x": x, "sample/y": np.asarray(prepared.y_val[:n]).astype(np.int64).reshape(-1)}


def stored_predictor(kind: str, model: "keras.Model", base: "keras.Model | None",
                     arch: str | None) -> Callable[[np.ndarray], np.ndarray]:
    """Ask a stored model about uint8 images: a head trained on cached features needs the shared
    base in front of it (only the small head is stored with the run); every other kind takes images."""
    if kind == "frozen (cached features)":
        if base is None or arch is None:
            raise ValueError("This model is a head on cached features: it needs its pretrained base.")
        return lambda x: model.predict(extract_features(base, arch, x), verbose=0).ravel()
    return lambda x: model.predict(x.astype(np.float32), verbose=0).ravel()


def arch_of(run_name: str) -> str | None:
    """"VGG16 frozen (random weights)" -> "vgg16"; "From scratch" -> None."""
    for arch, spec in BASES.items():
        if run_name.startswith(spec.label):
            return arch
    return None


def _ordered_approaches(spec: RunSpec, in_memory: bool) -> tuple[list[str], bool, list[str]]:
    """(approaches in the course's order, whether the fast path is used, notes for the learner)."""
    approaches = [a for a in APPROACHES if a in spec.approaches]
    if not approaches:
        raise ValueError("Choose at least one approach.")
    notes: list[str] = []
    if "VGG16 fine-tuned" in approaches and "VGG16 frozen" not in approaches:
        approaches.insert(approaches.index("VGG16 fine-tuned"), "VGG16 frozen")
        notes.append("Fine-tuning starts from a trained frozen-base model, so 'VGG16 frozen' trains first.")
    fast = spec.fast_path and not spec.frozen_augmentation
    if spec.fast_path and spec.frozen_augmentation:
        notes.append("Augmentation changes every image on every epoch, so cached features cannot be used: the frozen "
                     "base runs inside the model (slower on CPU).")
    if fast and not in_memory:
        fast = False
        notes.append("The training set is too large to hold its features in memory: the frozen base runs inside the model.")
    return approaches, fast, notes


@dataclass(frozen=True)
class Outline:
    """One approach's run as planned before any image is decoded: its name, kind and epochs."""

    approach: str
    arch: str | None  # None: from scratch
    name: str
    kind: str  # "scratch" | "frozen (cached features)" | "frozen (full model)" | "fine-tuned"
    epochs: int


def plan_outline(spec: RunSpec, in_memory: bool, infos: dict[str, WeightsInfo]) -> tuple[list[Outline], list[str]]:
    """The runs the chosen approaches make, in the course's order, and the notes for the learner.
    ``infos`` holds the weights of each base the approaches need (the names say "random weights")."""
    approaches, fast, notes = _ordered_approaches(spec, in_memory)
    out = []
    for approach in approaches:
        if approach == "From scratch":
            out.append(Outline(approach, None, run_name(approach, spec, None), "scratch", spec.epochs))
            continue
        arch = "vgg16" if approach.startswith("VGG16") else "mobilenet_v2"
        if arch not in infos:
            raise ValueError(f"{approach} needs the {BASES[arch].label} base.")
        tuned = approach.endswith("fine-tuned")
        kind = "fine-tuned" if tuned else ("frozen (cached features)" if fast else "frozen (full model)")
        out.append(Outline(approach, arch, run_name(approach, spec, infos[arch]), kind,
                           spec.finetune_epochs if tuned else spec.epochs))
    return out, notes


def make_plan(spec: RunSpec, prepared: Prepared, bases: dict[str, tuple["keras.Model", WeightsInfo]],
              stores: dict[str, FeatureStore] | None = None,
              should_stop: Callable[[], bool] | None = None) -> CatsDogsPlan:
    """The ModelRuns for the chosen approaches, in the order the course tells them.

    ``bases`` maps "vgg16"/"mobilenet_v2" to the shared (read-only) base and its weights info;
    ``stores`` maps arch to the FeatureStore for this image set (the fast path; made in memory when
    missing); ``should_stop`` ends a long feature extraction early (default: the training thread's job says so)."""
    outline, notes = plan_outline(spec, prepared.in_memory, {a: info for a, (_, info) in bases.items()})
    stores = dict(stores or {})
    fit = dict(prepared.train_inputs(spec.batch_size, spec.seed), validation_data=(prepared.x_val, prepared.y_val))
    trained: Trained = {}
    steps: list[PlanStep] = []
    for o in outline:
        if o.arch is None:
            steps.append(_scratch_step(spec, fit, trained))
            continue
        shared, info = bases[o.arch]
        if o.kind == "fine-tuned":
            steps.append(_finetune_step(spec, o.arch, shared, info, fit, trained))
        elif o.kind == "frozen (cached features)":
            store = stores.get(o.arch)
            if store is None or store.n_train != len(prepared.y_train) or store.image_size != spec.image_size:
                store = stores[o.arch] = FeatureStore(o.arch, spec.image_size, len(prepared.y_train),
                                                      len(prepared.y_val))
            steps.append(_cached_frozen_step(spec, prepared, o.arch, shared, info, store, trained, should_stop))
        else:
            steps.append(_full_frozen_step(spec, o.arch, shared, info, fit, trained))
    return CatsDogsPlan([s.run for s in steps], {s.run.name: s.predict for s in steps}, notes, stores,
                        {s.run.name: s.kind for s in steps})


# =============================================================================== the job, made in a worker

_PREPARED: "OrderedDict[tuple, Prepared]" = OrderedDict()
_PREPARED_LOCK = threading.Lock()
MAX_PREPARED = 2  # decoded image sets kept per process: the class's current settings and the last ones


def prepared_here(folder: CatsDogsFolder, image_size: int, n_train: int, n_val: int) -> Prepared:
    """This process's decoded images for one (image set, size, counts) choice, decoded once (the
    newest ``MAX_PREPARED``): thirty learners on the same settings decode the photos once per worker."""
    key = (folder.root, folder.digest, int(image_size), int(n_train), int(n_val))
    with _PREPARED_LOCK:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key]
    prep = prepare(folder, image_size, n_train, n_val,
                   on_progress=partial(report_phase, "checking and decoding the images", unit="image"))
    with _PREPARED_LOCK:
        _PREPARED[key] = prep
        while len(_PREPARED) > MAX_PREPARED:
            _PREPARED.popitem(last=False)
    return prep


@dataclass(frozen=True)
class CatsDogsRecipe:
    """A cats-vs-dogs job as a ``training.RunRecipe``: a few kB of settings and paths, no pixels.

    The web process decides everything a learner sees before Start (the names, kinds and epochs of
    the runs, which weights each base gets); the process that trains it (a worker) decodes the
    images, loads the bases and reads or fills the on-disk feature cache, in the job's slot."""

    folder: CatsDogsFolder
    spec: RunSpec
    n_train: int
    n_val: int
    weights: tuple[WeightsChoice, ...] = ()  # one per base the approaches need
    features: str = ""  # the feature cache's folder (``features_root``); "" keeps features in memory

    def _outline(self) -> tuple[list[Outline], list[str]]:
        n = len(self.folder.train.balanced(self.n_train))
        in_memory = images_bytes(n, self.spec.image_size) <= MAX_IN_MEMORY_BYTES
        return plan_outline(self.spec, in_memory, {w.info.arch: w.info for w in self.weights})

    def describe(self) -> dict[str, Any]:
        """What the page shows before the images are decoded: each run's kind, and the notes."""
        outline, notes = self._outline()
        return {"kinds": {o.name: o.kind for o in outline}, "notes": notes}

    def planned(self) -> list[PlannedRun]:
        return [PlannedRun(o.name, o.epochs) for o in self._outline()[0]]

    def build(self) -> BuiltRuns:
        from dnn2core.pretrained import cached_base

        prep = prepared_here(self.folder, self.spec.image_size, self.n_train, self.n_val)
        bases = {}
        for choice in self.weights:
            report_phase(f"loading {BASES[choice.info.arch].label}", 0, 0)
            base, info = cached_base(choice)
            if info.pretrained != choice.info.pretrained:  # found by the page, but it would not load
                raise ValueError(info.message)
            bases[choice.info.arch] = (base, info)
        stores = {}
        if self.features:
            for choice in self.weights:
                arch = choice.info.arch
                stores[arch] = FeatureStore(arch, self.spec.image_size, len(prep.y_train), len(prep.y_val),
                                            feature_folder(self.features, choice.key, self.folder.digest,
                                                           self.spec.image_size, len(prep.y_train), len(prep.y_val)))
        plan = make_plan(self.spec, prep, bases, stores)
        return BuiltRuns(plan.runs, arrays=validation_sample(prep),
                         extra={"kinds": plan.kinds, "notes": plan.notes, "report": prep.report.summary()})


def recipe_for(folder: CatsDogsFolder, spec: RunSpec, n_train: int, n_val: int,
               weights: Iterable[WeightsChoice] = (), features: str = "") -> CatsDogsRecipe:
    """The job's recipe, carrying only the images it uses: a 25,000-photo folder's list stays out of
    every job's message (the folder's fingerprint still keys the caches)."""
    chosen = replace(folder, train=folder.train.balanced(n_train), validation=folder.validation.balanced(n_val))
    return CatsDogsRecipe(chosen, spec, int(n_train), int(n_val), tuple(weights), features)


def resize_photo(image: np.ndarray, image_size: int) -> np.ndarray:
    """A learner's photo as the models see it: RGB, resized like the training images (uint8)."""
    import tensorflow as tf

    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    out = tf.image.resize(img[..., :3].astype(np.float32), (int(image_size), int(image_size)))
    return np.clip(np.round(out.numpy()), 0, 255).astype(np.uint8)


def results_frame(history: "pandas.DataFrame", kinds: dict[str, str] | None = None,
                  epoch_seconds: dict[str, list[float]] | None = None, extraction_seconds: float | None = None
                  ) -> "pandas.DataFrame":
    """One row per trained model: final and best validation accuracy, epochs, time per epoch and in all."""
    import pandas as pd

    rows = []
    for model in dict.fromkeys(history["model"]) if len(history) else []:
        h = history[history["model"] == model]
        val = h[h["metric"] == "val_accuracy"].sort_values("epoch")["value"]
        train = h[h["metric"] == "accuracy"].sort_values("epoch")["value"]
        secs = (epoch_seconds or {}).get(model) or []
        kind = (kinds or {}).get(model, "")
        row = {"model": model, "how": kind,
               "final val accuracy": float(val.iloc[-1]) if len(val) else float("nan"),
               "best val accuracy": float(val.max()) if len(val) else float("nan"),
               "final train accuracy": float(train.iloc[-1]) if len(train) else float("nan"),
               "epochs": int(len(val)),
               "s/epoch": float(np.mean(secs)) if secs else float("nan"),
               "training s": float(np.sum(secs)) if secs else float("nan")}
        if kind == "frozen (cached features)" and extraction_seconds is not None:
            row["feature extraction s"] = float(extraction_seconds)
        rows.append(row)
    return pd.DataFrame(rows)


# --- figures


def validation_curves_figure(history: "pandas.DataFrame", title: str = "Validation accuracy, all approaches",
                             references: dict[str, float] | None = None, height: int = 360):
    """Validation accuracy per epoch of every model on shared axes, with the course's figures as dotted lines."""
    import plotly.graph_objects as go

    from dnn2core.style import integer_axis, model_color

    fig = go.Figure()
    models = list(dict.fromkeys(history["model"])) if len(history) else []
    for model in models:
        rows = history[(history["model"] == model) & (history["metric"] == "val_accuracy")].sort_values("epoch")
        if rows.empty:
            continue
        fig.add_trace(go.Scatter(x=rows["epoch"], y=rows["value"], mode="lines+markers", name=model,
                                 line=dict(color=model_color(model))))
    for label, value in (references or {}).items():
        fig.add_hline(y=value, line=dict(dash="dot", color="#888888"), annotation_text=label,
                      annotation_position="bottom right")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="epoch",
                      yaxis_title="validation accuracy", yaxis=dict(range=[0.4, 1.0]),
                      legend=dict(orientation="h", y=-0.25))
    integer_axis(fig, "x")
    return fig


def photo_probabilities_figure(probabilities: dict[str, float], height: int = 300):
    """P(dog) per model for the learner's photo: bars left of 0.5 mean 'cat'."""
    import plotly.graph_objects as go

    names = list(probabilities)
    values = [float(probabilities[n]) for n in names]
    colors = ["#d62728" if v >= 0.5 else "#1f77b4" for v in values]
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", marker_color=colors,
                           text=[f"{'dog' if v >= 0.5 else 'cat'} {max(v, 1 - v):.0%}" for v in values],
                           textposition="auto"))
    fig.add_vline(x=0.5, line=dict(dash="dot", color="#888888"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), xaxis=dict(range=[0, 1],
                      title="P(dog)  — left of 0.5: cat"), title="What each model says")
    return fig
