"""The Keras code every page shows, filled in with the settings of the run on screen.

Why one module: the code a learner copies must be code that runs, and it must build the network
the page trained with the numbers the run used (its digits, units, optimizer, epochs). Each
snippet here is plain Python written out as a ``string.Template`` (``$name`` fields: Python code
is full of braces, never of dollars), and one function per page fills it from the same settings
that key the run. Snippets that build networks are cut into parts by marker lines
(``# --- data ---``, ``# --- model ---``, ``# --- train ---``): ``section(code, "model")`` is
the part that builds and compiles the networks, which the tests execute on their own and compare,
parameter for parameter, with the dnn2core builders.

Nothing here imports Keras: a snippet is text.
"""

from __future__ import annotations

from string import Template
from typing import Any

__all__ = [
    "inside_code",
    "one_pixel_attack_code",
    "section",
    "SECTIONS",
]

SECTIONS = ("data", "model", "train")
MNIST_TRAIN_DIGITS = 60_000  # keras.datasets.mnist's training set
OPTIMIZER_CLASSES = {"rmsprop": "RMSprop", "adam": "Adam", "sgd": "SGD"}


def _fill(template: str, **fields: Any) -> str:
    """A template with every field given (a missing one is a KeyError, not a silent ``$name``)."""
    return Template(template).substitute(fields)


def _join(*parts: str) -> str:
    """Non-empty parts, one blank line apart, ending in one newline."""
    return "\n\n".join(p.strip("\n") for p in parts if p and p.strip()) + "\n"


def _marker(name: str) -> str:
    return f"# --- {name} ---"


def section(code: str, name: str) -> str:
    """The lines of one part of a snippet (between its marker and the next one, markers excluded)."""
    if name not in SECTIONS:
        raise ValueError(f"Unknown section {name!r}; choose one of {SECTIONS}.")
    lines = code.splitlines()
    start = lines.index(_marker(name)) + 1
    end = next((i for i in range(start, len(lines)) if lines[i] in {_marker(s) for s in SECTIONS}), len(lines))
    return "\n".join(lines[start:end]).strip("\n") + "\n"


def _optimizer(name: str, learning_rate: float) -> str:
    return f"keras.optimizers.{OPTIMIZER_CLASSES[name]}(learning_rate={learning_rate:g})"


# =============================================================================== inside the network (Video 5)

INSIDE = """\
import numpy as np
import tensorflow as tf
import keras

# model: a trained Keras CNN taking 28x28x1 images in [0, 1]
layer = model.get_layer("$layer")
features = keras.Model(inputs=model.inputs, outputs=layer.output)

def filter_exemplar(filter_index, steps=30, step_size=0.05, stages=3, factor=1.2, seed=0):
    rng = np.random.default_rng(seed)
    size = int(28 / factor ** (stages - 1))
    img = rng.uniform(0.4, 0.6, (1, size, size, 1)).astype("float32")
    for stage in range(stages):
        img = tf.Variable(img)
        for _ in range(steps // stages):
            with tf.GradientTape() as tape:
                x = tf.image.resize(img, (28, 28))          # the model takes 28x28
                loss = tf.reduce_mean(features(x)[..., filter_index])
            grads = tape.gradient(loss, img)
            grads /= tf.sqrt(tf.reduce_mean(grads ** 2)) + 1e-8   # normalised step
            img.assign(tf.clip_by_value(img + step_size * grads, 0, 1))
        size = min(28, int(size * factor))                      # upscale between stages
        img = tf.image.resize(img.numpy(), (size, size), method="bicubic").numpy()
    return tf.image.resize(img, (28, 28)).numpy()[0]

# Grad-CAM for class c (keras-io's recipe)
grad_model = keras.Model(model.inputs, [model.get_layer("$cam_layer").output, model.output])
with tf.GradientTape() as tape:
    maps, probs = grad_model(image[None])
    score = probs[:, c]
weights = tf.reduce_mean(tape.gradient(score, maps), axis=(1, 2), keepdims=True)
cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))[0]
"""

ONE_PIXEL_ATTACK = """\
import numpy as np
from scipy.optimize import differential_evolution

# model: a trained Keras CNN; image: 28x28x1 in [0, 1]; label: its true class
H, W, C = image.shape
pixels = $pixels
bounds = [(0, H - 1), (0, W - 1), (0.0, 1.0)] * pixels       # row, column, value per pixel
integrality = [True, True, False] * pixels

def perturb(candidates):                                       # candidates: (S, 3 * pixels)
    batch = np.repeat(image[None], len(candidates), axis=0)
    for k in range(pixels):
        r, c, v = candidates[:, 3 * k:3 * k + 3].T
        batch[np.arange(len(batch)), r.astype(int), c.astype(int), 0] = v
    return batch

def true_class_confidence(x):                                  # x: (3 * pixels, S), a whole generation
    probs = model.predict(perturb(x.T), verbose=0)             # one batched prediction
    return probs[:, label]

def stop_on_success(intermediate_result):
    probs = model.predict(perturb(intermediate_result.x[None]), verbose=0)
    return probs.argmax() != label                             # True stops the search

# scipy's popsize counts candidates per number searched: about $popsize per generation
result = differential_evolution(true_class_confidence, bounds, integrality=integrality,
                                vectorized=True, updating="deferred", popsize=max(1, $popsize // (3 * pixels)),
                                maxiter=$maxiter, polish=False, callback=stop_on_success, rng=$seed)
"""


def inside_code(layer: str = "conv2d_1", cam_layer: str = "conv2d_2") -> str:
    """A filter exemplar of ``layer`` and Grad-CAM on ``cam_layer`` in plain Keras and TensorFlow
    (the page's chosen layers; it expects ``model``, ``image`` and a class ``c`` to exist)."""
    return _fill(INSIDE, layer=layer, cam_layer=cam_layer)


def one_pixel_attack_code(pixels: int = 1, popsize: int = 400, maxiter: int = 75, seed: int = 0) -> str:
    """The one-pixel attack with SciPy's differential evolution, one batched prediction per
    generation, with the page's budget (it expects ``model``, ``image`` and ``label``)."""
    return _fill(ONE_PIXEL_ATTACK, pixels=int(pixels), popsize=int(popsize), maxiter=int(maxiter), seed=int(seed))
