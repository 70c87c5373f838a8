"""The course's networks, built exactly as in the text, plus summaries learners can read.

Keras is imported inside each builder (the playground and home page never load it).
Builders return compiled models so a page, a test and a benchmark all train the same thing.
Page-specific networks live in their own modules and are re-exported at the bottom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import keras

Api = Literal["sequential", "functional"]
OPTIMIZERS = ("rmsprop", "adam", "sgd")


def make_optimizer(name: str = "rmsprop", learning_rate: float | None = None):
    """A Keras optimizer by name; None keeps Keras' default learning rate (rmsprop: 1e-3)."""
    import keras

    classes = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    if name not in classes:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {OPTIMIZERS}.")
    return classes[name]() if learning_rate is None else classes[name](learning_rate=learning_rate)


def build_mnist_dense(api: Api = "sequential", optimizer: str = "rmsprop", learning_rate: float | None = None) -> "keras.Model":
    """784 -> Dense(64, relu) -> Dense(10, softmax): 50,890 parameters (the course's dense net).

    Takes flattened 784-pixel inputs scaled to [0, 1]."""
    import keras
    from keras import layers

    if api == "sequential":
        model = keras.Sequential([
            keras.Input(shape=(784,)),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ], name="dense")
    elif api == "functional":
        inputs = keras.Input(shape=(784,))
        features = layers.Dense(64, activation="relu")(inputs)
        outputs = layers.Dense(10, activation="softmax")(features)
        model = keras.Model(inputs=inputs, outputs=outputs, name="dense")
    else:
        raise ValueError("api must be 'sequential' or 'functional'")
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def build_mnist_cnn(api: Api = "sequential", optimizer: str = "rmsprop", learning_rate: float | None = None) -> "keras.Model":
    """Conv2D(32,3) -> MaxPool -> Conv2D(64,3) -> MaxPool -> Conv2D(128,3) -> Flatten -> Dense(10):
    104,202 parameters (the course's CNN, after Chollet). Takes 28x28x1 inputs in [0, 1]."""
    import keras
    from keras import layers

    if api == "sequential":
        model = keras.Sequential([
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(filters=32, kernel_size=3, activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Conv2D(filters=64, kernel_size=3, activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Conv2D(filters=128, kernel_size=3, activation="relu"),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ], name="cnn")
    elif api == "functional":
        inputs = keras.Input(shape=(28, 28, 1))
        x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inputs)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
        x = layers.MaxPooling2D(pool_size=2)(x)
        x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
        x = layers.Flatten()(x)
        outputs = layers.Dense(10, activation="softmax")(x)
        model = keras.Model(inputs=inputs, outputs=outputs, name="cnn")
    else:
        raise ValueError("api must be 'sequential' or 'functional'")
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def summary_frame(model: "keras.Model", expand_nested: bool = False) -> pd.DataFrame:
    """The model summary as a table (Keras 3's ``summary()`` is terminal art).

    Columns: layer, type, output shape, params, trainable. Totals are in ``param_totals``."""
    rows = []

    def add(layer, prefix=""):
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            shape = None
        rows.append({
            "layer": prefix + layer.name,
            "type": type(layer).__name__,
            "output shape": str(shape).replace("None", "None") if shape is not None else "?",
            "params": int(layer.count_params()) if layer.built else 0,
            "trainable": bool(layer.trainable),
        })
        if expand_nested and hasattr(layer, "layers") and layer is not model:
            for sub in layer.layers:
                add(sub, prefix + "  ")

    for layer in model.layers:
        add(layer)
    return pd.DataFrame(rows)


def param_totals(model: "keras.Model") -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts, as the course's summaries show."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    non_trainable = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}
