"""Cats vs dogs core: the course's parameter counts (weights=None), freezing and fine-tuning counts,
VGG16 preprocessing, the shared base staying untouched, folder/zip checks, bad-image skipping,
and a tiny end-to-end run on real images."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_data
from dnn2core import catsdogs as cd
from dnn2core import models, pretrained, uploads
from dnn2core.uploads import UploadError

pytestmark = pytest.mark.timeout(300)


# ----------------------------------------------------------------------------- helpers


def jpeg_bytes(seed: int, size=(48, 40), mode="RGB") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def write_split_layout(root: Path, n_train=12, n_val=4) -> Path:
    for split, n in (("train", n_train), ("validation", n_val)):
        for cls in ("cats", "dogs"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{cls[:-1]}.{i}.jpg").write_bytes(jpeg_bytes(i + (0 if cls == "cats" else 1000)))
    return root


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
    return buf.getvalue()


# ----------------------------------------------------------------------------- the course's parameter counts


@pytest.fixture(scope="module")
def vgg16_full():
    """VGG16 with its top costs ~550 MB and several seconds: built once for the module."""
    return pretrained.build_base("vgg16", None, include_top=True, input_shape=(224, 224, 3))


@pytest.fixture(scope="module")
def transfer224():
    return models.build_vgg16_transfer(weights=None, input_shape=(224, 224, 3))


def test_vgg16_with_and_without_top(vgg16_full):
    assert vgg16_full.count_params() == 138_357_544  # the course's prose says 138,350,544: a slip
    assert [layer.name for layer in vgg16_full.layers[-3:]] == ["fc1", "fc2", "predictions"]
    assert vgg16_full.get_layer("fc1").count_params() == 102_764_544
    base = pretrained.build_base("vgg16", None, input_shape=(224, 224, 3))
    assert base.count_params() == 14_714_688
    assert tuple(base.output.shape) == (None, 7, 7, 512)  # flattened: 25,088 features (the text says 25,888)


def test_combined_model_is_frozen_with_25089_trainable(transfer224):
    totals = models.param_totals(transfer224)
    assert totals == {"total": 14_739_777, "trainable": 25_089, "non_trainable": 14_714_688}
    frame = models.summary_frame(transfer224)
    assert frame["type"].tolist() == ["InputLayer", "Functional", "Flatten", "Dense"]
    assert frame["params"].tolist() == [0, 14_714_688, 0, 25_089]
    assert frame["output shape"].tolist()[1:] == ["(None, 7, 7, 512)", "(None, 25088)", "(None, 1)"]
    assert transfer224.loss == "binary_crossentropy"


def test_unfreeze_top_gives_the_course_counts(transfer224):
    model = cd.copy_model(transfer224)
    cd.unfreeze_top(model, 4, learning_rate=1e-5)
    base = cd.base_of(model)
    base_trainable = int(sum(np.prod(w.shape) for w in base.trainable_weights))
    assert base_trainable == 7_079_424
    assert [layer.name for layer in base.layers if layer.trainable] == [
        "block5_conv1", "block5_conv2", "block5_conv3", "block5_pool"]
    assert models.param_totals(model) == {"total": 14_739_777, "trainable": 7_079_424 + 25_089,
                                          "non_trainable": 7_635_264}
    assert type(model.optimizer).__name__ == "RMSprop"
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-5)
    # the original stays frozen: unfreezing acted on a copy
    assert models.param_totals(transfer224)["trainable"] == 25_089


def test_scratch_networks_counts_and_limits():
    small = cd.build_catsdogs_scratch((224, 224, 3))
    # 896 + 18,496 + 73,856 conv weights; 52x52x128 = 346,112 features -> 346,113 in the Dense layer
    assert small.count_params() == 439_361
    assert [type(layer).__name__ for layer in small.layers] == [
        "Rescaling", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dense"]
    deeper = cd.build_catsdogs_scratch((150, 150, 3), deeper=True, augmentation=True, dropout=0.5)
    kinds = [type(layer).__name__ for layer in deeper.layers]
    assert kinds.count("Conv2D") == 5 and kinds.count("MaxPooling2D") == 4 and "Dropout" in kinds
    assert deeper.layers[-3].output.shape[-1] == 12_800 and deeper.count_params() == 1_581_377
    assert deeper.get_layer("augmentation") is not None
    with pytest.raises(ValueError, match="at least 78"):
        cd.build_catsdogs_scratch((64, 64, 3), deeper=True)
    with pytest.raises(ValueError, match="Dropout"):
        cd.build_catsdogs_scratch((64, 64, 3), dropout=1.5)


def test_reexported_from_models():
    assert models.build_catsdogs_scratch is cd.build_catsdogs_scratch
    assert models.unfreeze_top is cd.unfreeze_top


# ----------------------------------------------------------------------------- preprocessing and shared bases


def test_preprocess_flips_rgb_to_bgr_and_subtracts_imagenet_means():
    import keras

    pixel = np.array([[[[10.0, 20.0, 30.0]]]], dtype=np.float32)  # R, G, B
    out = np.asarray(keras.applications.vgg16.preprocess_input(pixel.copy()))
    np.testing.assert_allclose(out[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], atol=1e-4)


def test_preprocessing_is_inside_the_model():
    base = pretrained.build_base("vgg16", None)
    model = cd.build_vgg16_transfer(input_shape=(32, 32, 3), base=base)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    feats = cd.extract_features(base, "vgg16", x.astype(np.uint8))
    import keras
    direct = np.asarray(base(keras.applications.vgg16.preprocess_input(x.astype(np.uint8).astype(np.float32))))
    np.testing.assert_allclose(feats, direct, rtol=1e-4, atol=1e-4)
    w, b = model.get_layer("cat_or_dog").get_weights()
    expected = 1 / (1 + np.exp(-(feats.reshape(2, -1) @ w + b)))
    np.testing.assert_allclose(model.predict(x.astype(np.uint8).astype(np.float32), verbose=0), expected, rtol=1e-3)


def test_fine_tuning_a_copy_leaves_the_shared_base_untouched():
    shared = pretrained.build_base("vgg16", None)
    shared.trainable = False
    before = [w.copy() for w in shared.get_weights()]
    mine = cd.build_vgg16_transfer(input_shape=(32, 32, 3), base=cd.copy_base(shared))
    cd.unfreeze_top(mine, 4, learning_rate=1e-2)
    x = np.random.default_rng(1).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1] * 4, dtype=np.float32)
    top_before = cd.base_of(mine).get_layer("block5_conv3").get_weights()[0].copy()
    mine.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.allclose(cd.base_of(mine).get_layer("block5_conv3").get_weights()[0], top_before)
    for a, b in zip(before, shared.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not shared.trainable


def test_one_loader_for_typed_and_cached_weights_never_echoes_server_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("DNN2_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DNN2_OFFLINE", "1")
    monkeypatch.delenv("DNN2_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("DNN2_ALLOW_SERVER_PATHS", raising=False)
    base, info = pretrained.load_base("vgg16", "imagenet")
    assert not info.pretrained and info.source == "random" and "RANDOM" in info.label
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in info.message and str(tmp_path) not in info.message
    (tmp_path / "data").mkdir()
    base.save_weights(tmp_path / "data" / "my_vgg16.weights.h5")
    loaded, ok = pretrained.load_base("vgg16", "my_vgg16.weights.h5")  # relative: looked up in each root
    assert ok.pretrained and ok.source == "file" and "ImageNet" in ok.label
    assert ok.location == "the data folder/my_vgg16.weights.h5"
    np.testing.assert_array_equal(loaded.get_weights()[-2], base.get_weights()[-2])

    outside = tmp_path / "outside.weights.h5"  # exists, but outside every allowed root
    base.save_weights(outside)
    _, refused = pretrained.load_base("vgg16", str(outside))
    _, missing = pretrained.load_base("vgg16", str(tmp_path / "nope.h5"))
    assert not refused.pretrained and refused.message == missing.message and str(tmp_path) not in refused.message
    (tmp_path / "data" / "notes.txt").write_text("x")
    assert "not a Keras weights file" in pretrained.load_base("vgg16", "notes.txt")[1].message
    (tmp_path / "data" / "bad.h5").write_bytes(b"not an HDF5 file")
    _, bad = pretrained.load_base("vgg16", "bad.h5")
    assert not bad.pretrained and "could not be loaded" in bad.message and "signature" not in bad.message

    monkeypatch.setenv("DNN2_VGG16_WEIGHTS", str(outside))  # the administrator's file may be anywhere
    _, admin = pretrained.load_base("vgg16", "imagenet")
    assert admin.pretrained and admin.source == "DNN2_VGG16_WEIGHTS" and admin.location == "DNN2_VGG16_WEIGHTS"


# ----------------------------------------------------------------------------- folders, zips, bad images


def test_layouts_are_recognised_and_balanced(tmp_path):
    split = cd.scan_layout(write_split_layout(tmp_path / "split"))
    assert split.layout == "train/validation folders" and len(split.train) == 24 and len(split.validation) == 8
    assert split.train.labels[:4] == (0, 1, 0, 1)
    sub = split.train.balanced(10)
    assert sub.counts() == (5, 5)
    kaggle = tmp_path / "kaggle" / "train"
    kaggle.mkdir(parents=True)
    for i in range(20):
        (kaggle / f"cat.{i}.jpg").write_bytes(jpeg_bytes(i))
        (kaggle / f"dog.{i}.jpg").write_bytes(jpeg_bytes(100 + i))
    found = cd.scan_layout(tmp_path / "kaggle")
    assert found.layout == "Kaggle file names"
    assert found.train.counts() == (16, 16) and found.validation.counts() == (4, 4)
    assert Path(found.validation.paths[0]).name == "cat.16.jpg"  # the last 20% by number validate
    with pytest.raises(ValueError, match="no folder"):
        cd.scan_layout(tmp_path / "missing")
    with pytest.raises(ValueError, match="file, not a folder"):
        cd.scan_layout(kaggle / "cat.0.jpg")


def test_zip_upload_is_checked(tmp_path):
    good = {f"set/{s}/{c}/{c[:-1]}.{i}.jpg": jpeg_bytes(i) for s, n in (("train", 10), ("validation", 2))
            for c in ("cats", "dogs") for i in range(n)}
    folder = cd.folder_from_zip(zip_of(good), tmp_path / "ok")
    assert folder.train.counts() == (10, 10) and Path(folder.root).is_relative_to((tmp_path / "ok").resolve())

    with pytest.raises(UploadError, match=r"outside the archive"):
        cd.folder_from_zip(zip_of({**good, "../evil.jpg": b"x"}), tmp_path / "slip")
    assert not (tmp_path / "evil.jpg").exists() and not (tmp_path / "slip").exists()
    with pytest.raises(UploadError, match="absolute path"):
        cd.folder_from_zip(zip_of({"/etc/evil.jpg": b"x"}), tmp_path / "abs")
    with pytest.raises(UploadError, match="No cats/dogs images"):
        cd.folder_from_zip(zip_of({"holiday/beach.jpg": jpeg_bytes(1), "notes.txt": b"hi"}), tmp_path / "wrong")
    few = {f"train/{c}/{c[:-1]}.{i}.jpg": jpeg_bytes(i) for c in ("cats", "dogs") for i in range(3)}
    with pytest.raises(UploadError, match="too few images"):
        cd.folder_from_zip(zip_of(few), tmp_path / "few")
    with pytest.raises(UploadError, match="not a zip"):
        cd.folder_from_zip(b"PK but not really", tmp_path / "bad")
    with pytest.raises(UploadError, match="larger than"):
        cd.folder_from_zip(b"x" * 2000, tmp_path / "big", max_bytes=1000)


def test_bad_images_are_skipped_and_counted(tmp_path):
    root = write_split_layout(tmp_path / "set", n_train=10, n_val=3)
    cats = root / "train" / "cats"
    whole = jpeg_bytes(7, size=(120, 100))
    (cats / "cat.100.jpg").write_bytes(whole[: len(whole) // 2])  # truncated
    (cats / "cat.101.jpg").write_bytes(b"definitely not a jpeg")  # corrupt
    (cats / "cat.102.jpg").write_bytes(jpeg_bytes(8, mode="L"))  # grayscale
    cmyk = io.BytesIO()
    Image.new("CMYK", (20, 20)).save(cmyk, "JPEG")
    (root / "train" / "dogs" / "dog.100.jpg").write_bytes(cmyk.getvalue())
    folder = cd.scan_layout(root)
    prepared = cd.prepare(folder, 32, n_train=None, n_val=None)
    skipped = {k: len(v) for k, v in prepared.report.skipped.items()}
    assert skipped == {"truncated": 1, "corrupt": 1, "not_rgb": 2}
    assert prepared.x_train.shape == (20, 32, 32, 3) and prepared.x_train.dtype == np.uint8
    assert prepared.x_val.shape == (6, 32, 32, 3)
    assert "Skipped 4 image(s)" in prepared.report.summary()
    assert uploads.check_image(str(cats / "cat.0.jpg"), max_pixels=100) == "huge"
    assert uploads.check_image(str(cats / "cat.0.jpg")) is None


def test_no_images_anywhere_says_how_to_get_them(no_local_data):
    assert cd.find_local_folder() is None
    assert cd.download_filtered() is None  # offline: fails at once, no fake data
    ways = dict(cd.how_to_get_images())
    text = " ".join(ways.values())
    assert "65 MB" in text and cd.FILTERED_URL in text and "10 MB" in text and "540 MB" in text


# ----------------------------------------------------------------------------- real images, end to end


def test_pipeline_and_tiny_run_on_real_images(monkeypatch):
    root = shared_data("cats_and_dogs")
    monkeypatch.setenv("DNN2_DATA_DIR", str(root.parent))
    monkeypatch.setenv("DNN2_OFFLINE", "1")
    folder = cd.find_local_folder()
    assert folder is not None and len(folder.train) == 2000 and len(folder.validation) == 1000
    assert cd.provenance_for(folder, "DNN2_DATA_DIR").complete

    prepared = cd.prepare(folder, 64, n_train=48, n_val=24)
    assert prepared.report.n_skipped == 0
    assert prepared.x_train.shape == (48, 64, 64, 3) and prepared.y_train.sum() == 24
    assert prepared.x_val.shape == (24, 64, 64, 3) and prepared.y_val.sum() == 12
    assert 40 < prepared.x_train.mean() < 200  # real photos, not blank frames

    ds = cd.make_dataset(prepared.train, 64, batch_size=16, shuffle=True, seed=0)
    x, y = next(iter(ds))
    assert tuple(x.shape) == (16, 64, 64, 3) and x.dtype.name == "float32" and float(x.numpy().max()) <= 255

    from dnn2core.training import Budget, JobGate, TrainingJob

    base, info = pretrained.load_base("vgg16", "imagenet")  # offline, no weights: random and labelled
    assert not info.pretrained
    spec = cd.RunSpec(approaches=("From scratch", "VGG16 frozen"), image_size=64, epochs=1, batch_size=16)
    plan = cd.make_plan(spec, prepared, {"vgg16": (base, info)})
    assert [r.name for r in plan.runs] == ["From scratch", "VGG16 frozen (random weights)"]
    job = TrainingJob(plan.runs, gate=JobGate(1), budget=Budget(), seed=0)
    job.start()
    assert job.join(240)
    snap = job.snapshot()
    assert snap.state == "done", snap.message
    store = plan.stores["vgg16"]
    assert store.ready and store.x_train.shape == (48, 2, 2, 512) and np.isfinite(store.x_train).all()
    for name, mp in snap.models.items():
        assert len(mp.history["val_accuracy"]) == 1 and 0.0 <= mp.history["val_accuracy"][0] <= 1.0
        assert np.isfinite(mp.history["loss"][0])
    probs = {name: p(prepared.x_val[:3]) for name, p in plan.predictors.items()}
    assert all(v.shape == (3,) and ((v >= 0) & (v <= 1)).all() for v in probs.values())
    frame = cd.results_frame(job.history_frame(), plan.kinds,
                             {n: mp.epoch_seconds for n, mp in snap.models.items()}, store.seconds)
    assert frame["epochs"].tolist() == [1, 1] and frame["feature extraction s"].notna().sum() == 1


def test_lighter_base_sits_next_to_vgg16(tmp_path):
    mobile = pretrained.build_base("mobilenet_v2", None)
    for size in (96, 150):
        x = np.zeros((1, size, size, 3), dtype=np.uint8)
        assert cd.extract_features(mobile, "mobilenet_v2", x).shape[1:] == cd.feature_shape("mobilenet_v2", size)
    vgg = pretrained.build_base("vgg16", None)
    n = 8
    prepared = cd.Prepared(64, cd.ImageList(), cd.ImageList(), uploads.ScanReport(),
                           np.zeros((n, 64, 64, 3), np.uint8), np.array([0, 1] * 4, np.float32),
                           np.zeros((4, 64, 64, 3), np.uint8), np.array([0, 1] * 2, np.float32), 0.0)
    random = pretrained.WeightsInfo("vgg16", False, "random")
    spec = cd.RunSpec(approaches=("VGG16 frozen", "MobileNetV2 frozen"), image_size=64, epochs=1)
    plan = cd.make_plan(spec, prepared, {"vgg16": (vgg, random),
                                         "mobilenet_v2": (mobile, pretrained.WeightsInfo("mobilenet_v2", False, "random"))})
    assert [r.name for r in plan.runs] == ["VGG16 frozen (random weights)", "MobileNetV2 frozen (random weights)"]
    assert set(plan.stores) == {"vgg16", "mobilenet_v2"}
    store = plan.stores["mobilenet_v2"]
    assert (store.n_train, *store.shape) == (n, 2, 2, 1280) and not store.ready
    with pytest.raises(ValueError, match="not been extracted"):
        store.x_train
    with pytest.raises(ValueError, match="MobileNetV2 base"):
        cd.make_plan(spec, prepared, {"vgg16": (vgg, random)})


def test_feature_extraction_stops_within_a_batch_and_caches_nothing():
    from dnn2core.training import Budget, JobGate, ModelRun, TrainingJob

    base = pretrained.build_base("vgg16", None)
    x = np.zeros((12, 32, 32, 3), dtype=np.uint8)
    store = cd.FeatureStore("vgg16", 32, 12, 4)
    calls = []

    def stop_after_two():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(cd.ExtractionStopped):
        store.fill(base, x, x[:4], batch_size=4, should_stop=stop_after_two)
    assert not store.ready and len(calls) == 3
    assert store.fill(base, x, x[:4], batch_size=4) and store.ready and store.seconds > 0
    assert not store.fill(base, x, x[:4])  # once only

    job = TrainingJob([ModelRun("m", lambda: None)], gate=JobGate(1), budget=Budget(), seed=0)
    assert not cd.job_should_stop(job) and not cd.job_should_stop(None)
    job.stop()
    assert cd.job_should_stop(job)


def test_the_feature_cache_drops_the_least_recently_used_sets_beyond_its_size(tmp_path):
    import fcntl
    import os

    sets = []
    for i in range(4):  # 1 MB each, oldest first
        folder = tmp_path / f"set{i}"
        folder.mkdir()
        (folder / "train.npy").write_bytes(b"\0" * 1_000_000)
        os.utime(folder, (1_000 + i, 1_000 + i))
        sets.append(folder)
    with open(tmp_path / "set1.lock", "a+") as held:  # set 1 is being written by another job
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        removed = cd.prune_features(tmp_path, keep=sets[0], max_bytes=2_000_000)
    # oldest first, but never the set in use (kept) or one being written (locked): 4 MB -> 2 MB
    assert removed == 2 and [s.exists() for s in sets] == [True, True, False, False]
    assert cd.prune_features(tmp_path, max_bytes=10_000_000) == 0  # under the cap: nothing goes
    # one key per weights, images, size and counts
    key = cd.feature_folder(tmp_path, "vgg16:random:1234", "abc", 150, 2000, 1000)
    assert key == cd.feature_folder(tmp_path, "vgg16:random:1234", "abc", 150, 2000, 1000)
    assert key != cd.feature_folder(tmp_path, "vgg16:random:1234", "abc", 150, 2000, 999)
    assert key != cd.feature_folder(tmp_path, "vgg16:/w.h5:1:2", "abc", 150, 2000, 1000)


def test_a_damaged_weights_file_fails_the_run_with_the_reason(monkeypatch, tmp_path):
    """The page only finds the typed file; the worker loads it. A file that is not VGG16 weights ends
    the run "failed" with words a learner can act on, and trains nothing on random weights instead."""
    from dnn2core.training import Budget, JobGate, TrainingJob

    root = shared_data("cats_and_dogs")
    monkeypatch.setenv("DNN2_DATA_DIR", str(root.parent))
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not an HDF5 file")
    choice = pretrained.choose_weights("vgg16", str(bad), roots=uploads.allowed_roots(tmp_path))
    assert choice.path == str(bad) and choice.info.pretrained  # found, not opened: the page says nothing yet
    spec = cd.RunSpec(approaches=("VGG16 frozen",), image_size=64, epochs=1, batch_size=16)
    recipe = cd.recipe_for(cd.find_local_folder(), spec, 12, 8, [choice])
    job = TrainingJob(recipe, gate=JobGate(1), budget=Budget(), seed=0)
    assert list(job.snapshot().models) == ["VGG16 frozen"]
    job.start()
    assert job.join(240)
    snap = job.snapshot()
    assert snap.state == "failed" and "could not be loaded as VGG16 weights" in snap.message
    assert "damaged" in snap.message and str(tmp_path) not in snap.message
    assert snap.models["VGG16 frozen"].epoch == 0
