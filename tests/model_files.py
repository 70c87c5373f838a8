"""Small .keras files for the upload tests, built (and saved) by the tests themselves: a good tiny
CNN, a colour model that outputs logits, and the hostile ones the page must refuse, each with the
words its refusal must contain. Built once per process (saving a model takes a fraction of a second)."""

from __future__ import annotations

import functools
import io
import os
import tempfile
import zipfile


def _save(model) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


@functools.lru_cache(maxsize=None)
def tiny_cnn() -> bytes:
    """28x28x1 -> Conv2D(4) -> MaxPool -> Conv2D(6) -> Dense(10, softmax): an MNIST-shaped CNN (seeded)."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv_a"),
        keras.layers.MaxPooling2D(2, name="pool_a"),
        keras.layers.Conv2D(6, 3, activation="relu", name="conv_b"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", name="digits"),
    ], name="tiny")
    return _save(model)


@functools.lru_cache(maxsize=None)
def colour_logits() -> bytes:
    """32x32x3 in 0-255 (a Rescaling layer first) -> Conv2D(5) -> pooling -> Dense(3) logits (functional)."""
    import keras

    keras.utils.set_random_seed(4)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="colour_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return _save(keras.Model(inputs, keras.layers.Dense(3, name="logits")(x)))


@functools.lru_cache(maxsize=None)
def with_lambda() -> bytes:
    import keras

    return _save(keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda t: t * 2.0),
                                   keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                                   keras.layers.Dense(10, activation="softmax")]))


@functools.lru_cache(maxsize=None)
def dense_only() -> bytes:
    import keras

    return _save(keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                   keras.layers.Dense(10, activation="softmax")]))


@functools.lru_cache(maxsize=None)
def one_d_input() -> bytes:
    import keras

    return _save(keras.Sequential([keras.Input((100,)), keras.layers.Dense(10, activation="softmax")]))


def truncated() -> bytes:
    data = tiny_cnn()
    return data[: len(data) // 2]


def zip_bomb(megabytes: int = 20) -> bytes:
    """A .keras-shaped zip whose weights are ``megabytes`` of zeros, deflated about 1000 to 1."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", b'{"keras_version": "3.0.0"}')
        zf.writestr("config.json", b'{"module": "keras", "class_name": "Sequential", "config": {}}')
        with zf.open("model.weights.h5", "w") as member:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(megabytes):
                member.write(chunk)
    return buf.getvalue()


NOT_A_ZIP = b"This is not a model at all.\n" * 10


def hostile() -> list[tuple[str, bytes, str]]:
    """(file name, bytes, words the refusal contains) for every file the page must refuse."""
    return [("notes.keras", NOT_A_ZIP, "not a Keras model"),
            ("half.keras", truncated(), "damaged or incomplete"),
            ("bomb.keras", zip_bomb(), "zip bomb"),
            ("lambda.keras", with_lambda(), "Lambda layer"),
            ("dense.keras", dense_only(), "no Conv2D layer"),
            ("vector.keras", one_d_input(), "not images")]
