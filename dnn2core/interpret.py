"""Looking inside a trained network: filter exemplars, feature maps, saliency and Grad-CAM.

The course's Video 5 follows Fabio Graetz's "How to Visualize Convolutional Features in 40
Lines of Code": pick one filter, start from noise, and do gradient *ascent on the input* so the
filter's mean activation grows; upscale between stages so the pattern is found coarse-to-fine
instead of as high-frequency noise. Then test the hypothesis: feed real images and see which
filters they excite. Saliency and Grad-CAM (not in the course, expected by learners today)
answer the reverse question: which pixels made this prediction?

Everything here works on any Keras image model whose layers form a chain (the course's MNIST
CNN, a cats/dogs model with a nested VGG16 base, VGG16 itself). Layers inside a nested model
are named ``"outer/inner"``. Images go in and come out in the model's own input scale
(``value_range``); ``preprocess`` (e.g. ``vgg16_preprocess``) is applied inside the gradient.

TensorFlow and Keras are imported inside functions only, so importing this module stays cheap.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dnn2core.env import env_number

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "array_digest",
    "check_image_classifier",
    "ClassifierCheck",
    "conv_layers",
    "DEFAULT_CNN_RUN",
    "default_cnn_from",
    "default_cnn_recipe",
    "default_mnist_cnn",
    "DefaultCnn",
    "DefaultCnnRecipe",
    "exemplar_grid",
    "ExemplarSettings",
    "feature_maps",
    "filter_activations",
    "filter_count",
    "filter_exemplar",
    "filter_exemplars",
    "fit_image",
    "grad_cam",
    "heat_overlay_figure",
    "image_grid_figure",
    "initial_noise",
    "last_conv_layer",
    "maps_and_exemplars_figure",
    "ModelChoice",
    "predict_probs",
    "rank_filters",
    "ranking_figure",
    "regularisers",
    "saliency_map",
    "to_display",
    "top_activating",
    "uploaded_model_choice",
    "vgg16_preprocess",
]

ValueRange = tuple[float, float]
Preprocess = Callable[[Any], Any]

# One sub-model per (model, layer): building a keras.Model takes tens of milliseconds and
# the page asks for the same layer on every rerun. Weak keys: a dropped model frees its cache.
_FN_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_FN_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------
# Models: VGG16 comes from dnn2core.pretrained (one loader); a small CNN always exists
# --------------------------------------------------------------------------------------------


def vgg16_preprocess(x):
    """[0, 1] RGB -> what the Caffe-trained VGG16 expects (0-255 BGR minus the ImageNet means): the
    pretrained base's own ``preprocess`` on rescaled input, as tensor ops that sit inside the gradient
    of the exemplar search."""
    import tensorflow as tf

    from dnn2core import pretrained

    return pretrained.preprocess("vgg16", tf.convert_to_tensor(x, dtype=tf.float32) * 255.0)


@dataclass
class DefaultCnn:
    """The small CNN the page uses when the learner has trained nothing yet."""

    model: "keras.Model"
    test_accuracy: float  # on up to 1,000 test digits
    train_size: int
    epochs: int
    seed: int
    description: str = field(default="")


DEFAULT_CNN_RUN = "CNN"


def _test_accuracy(model: "keras.Model", *, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {"test_accuracy": float(np.mean(predict_probs(model, x).argmax(axis=1) == y)), "test_size": int(len(y))}


@dataclass(frozen=True)
class DefaultCnnRecipe:
    """The course's MNIST CNN, trained briefly so "Inside the network" works on a fresh, offline machine,
    as a ``training.RunRecipe``: the worker that trains it loads the digits itself, and the run store
    keeps the result for every learner (the web process never fits it)."""

    seed: int = 0
    train_size: int = 4000
    epochs: int = 3

    def planned(self) -> list:
        from dnn2core.training import PlannedRun

        return [PlannedRun(DEFAULT_CNN_RUN, self.epochs)]

    def build(self):
        from functools import partial

        from dnn2core import data, digits
        from dnn2core.experiments import mnist_here
        from dnn2core.models import build_mnist_cnn
        from dnn2core.training import BuiltRuns, ModelRun

        loaded, _ = mnist_here(str(data.data_dir()))
        split = digits.prepare(loaded.data, train_size=min(self.train_size, len(loaded.data.y_train)), seed=self.seed)
        x_test, y_test = digits.as_input(split.x_test[:1000], "cnn"), split.y_test[:1000]
        run = ModelRun(DEFAULT_CNN_RUN, build_mnist_cnn,
                       dict(x=digits.as_input(split.x_train, "cnn"), y=split.y_train, epochs=self.epochs,
                            batch_size=64, shuffle=True),
                       evaluate=partial(_test_accuracy, x=x_test, y=y_test))
        return BuiltRuns([run], extra={"train_size": int(len(split.y_train)), "digits": loaded.provenance.badge})


def default_cnn_recipe(seed: int = 0, train_size: int | None = None, epochs: int | None = None) -> DefaultCnnRecipe:
    """At most ``train_size`` digits (env ``DNN2_DEFAULT_CNN_TRAIN``, default 4,000) for ``epochs`` (env
    ``DNN2_DEFAULT_CNN_EPOCHS``, default 3), with a fixed seed: about 10 s on 2 CPU cores, and accurate
    enough (~95%) that its filters, Grad-CAM and attacks are meaningful."""
    train_size = int(train_size or env_number("DNN2_DEFAULT_CNN_TRAIN", 4000, whole=True, minimum=1))
    epochs = int(epochs or env_number("DNN2_DEFAULT_CNN_EPOCHS", 3, whole=True, minimum=1))
    if train_size < 10 or epochs < 1:
        raise ValueError("The default CNN needs at least 10 training digits and 1 epoch.")
    return DefaultCnnRecipe(int(seed), train_size, epochs)


def default_cnn_from(model: "keras.Model", results: dict, extra: dict, recipe: DefaultCnnRecipe) -> DefaultCnn:
    """The trained default CNN with the words the page shows, from its run (stored or just trained)."""
    n, acc = int(extra.get("train_size", recipe.train_size)), float(results["test_accuracy"])
    text = (f"The course's CNN trained here for {recipe.epochs} epoch(s) on {n:,} digits (seed {recipe.seed}): "
            f"{acc:.1%} on {int(results.get('test_size', 1000)):,} test digits.")
    return DefaultCnn(model, acc, n, recipe.epochs, recipe.seed, text)


def default_mnist_cnn(seed: int = 0, train_size: int | None = None, epochs: int | None = None) -> DefaultCnn:
    """Train the default CNN here and now (tests, notebooks); the page has a worker train it (its recipe)."""
    from dnn2core.training import Budget, JobGate, TrainingJob

    recipe = default_cnn_recipe(seed, train_size, epochs)
    job = TrainingJob(recipe, gate=JobGate(1), budget=Budget(), seed=recipe.seed)
    job.start()
    job.join()
    snap = job.snapshot()
    if snap.state != "done":
        raise RuntimeError(f"The default CNN did not train: {snap.message or snap.state}")
    return default_cnn_from(job.models[DEFAULT_CNN_RUN], snap.models[DEFAULT_CNN_RUN].results, job.extra, recipe)


# --------------------------------------------------------------------------------------------
# Layers and sub-models
# --------------------------------------------------------------------------------------------


def _chain(model) -> list:
    """The model's layers in call order, without the input layer."""
    import keras

    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _is_model(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def conv_layers(model) -> list[str]:
    """Names of the convolution layers, nested ones as ``"outer/inner"`` (e.g. a VGG16 base)."""
    import keras

    names: list[str] = []
    for layer in _chain(model):
        if _is_model(layer):
            names += [f"{layer.name}/{n}" for n in conv_layers(layer)]
        elif isinstance(layer, keras.layers.Conv2D):
            names.append(layer.name)
    return names


def last_conv_layer(model) -> str:
    """The last convolution layer: Grad-CAM's usual choice (the most semantic spatial map)."""
    names = conv_layers(model)
    if not names:
        raise ValueError("This model has no convolution layer, so it has no filters or feature maps to show.")
    return names[-1]


def _get_layer(model, name: str):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(f"The model has no layer named {name!r}; its convolution layers are "
                         f"{', '.join(conv_layers(model)) or 'none'}.") from None


def _split_fn(model, layer_name: str, what: str = "output") -> Callable:
    """f(x) -> a tensor taken at ``layer_name``.

    what: "output" (the layer's activations), "input" (what the layer receives) or "both"
    (the layer's activations and the model's output, for Grad-CAM). Top-level layers use a
    Keras sub-model on the model's own graph (any topology); a layer inside a nested model is
    reached by calling the outer layers one after another, which assumes the outer model is a
    chain (Sequential, or a base followed by a head)."""
    import keras

    if what not in ("output", "input", "both"):
        raise ValueError(f"what must be 'output', 'input' or 'both', got {what!r}")
    key = (layer_name, what)
    with _FN_LOCK:
        cached = _FN_CACHE.setdefault(model, {}).get(key)
    if cached is not None:
        return cached
    outer, _, inner = layer_name.partition("/")
    layer = _get_layer(model, outer)
    if not inner and isinstance(model, keras.Sequential):
        # Call the layers one after another: a Sequential model loaded from a .keras file can hold
        # a second, disconnected graph, so its layer.output and its outputs need not be linked.
        layers = list(model.layers)
        pos = layers.index(layer)

        def fn(x):
            h = x
            for i, lyr in enumerate(layers):
                if i == pos and what == "input":
                    return h
                h = lyr(h, training=False)
                if i == pos and what == "output":
                    return h
                if i == pos:
                    acts = h
            return [acts, h]
    elif not inner:
        if what == "output":
            outputs = layer.output
        elif what == "input":
            outputs = layer.input
        else:
            outputs = [layer.output, model.outputs[0]]  # Sequential models have no .output
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        sub = keras.Model(inputs=inputs, outputs=outputs)

        def fn(x):
            return sub(x, training=False)
    else:
        if not _is_model(layer):
            raise ValueError(f"{outer!r} is not a nested model, so {layer_name!r} does not exist.")
        chain = _chain(model)
        pos = chain.index(layer)
        before, after = chain[:pos], chain[pos + 1:]
        inner_fn = _split_fn(layer, inner, what)
        lead = None  # the outer graph up to the nested model, including ops that are not layers
        # (preprocess_input); the tensor is found on the nested model's call node in the outer graph
        for node in reversed(list(getattr(layer, "_inbound_nodes", []))):
            try:
                lead = keras.Model(inputs=model.inputs[0], outputs=node.input_tensors[0])
                break
            except (AttributeError, ValueError, TypeError, IndexError):
                continue

        def fn(x):
            if lead is not None:
                x = lead(x, training=False)
            else:
                for lyr in before:
                    x = lyr(x, training=False)
            if what != "both":
                return inner_fn(x)
            acts, out = inner_fn(x)
            for lyr in after:
                out = lyr(out, training=False)
            return acts, out
    with _FN_LOCK:
        _FN_CACHE.setdefault(model, {})[key] = fn
    return fn


def _find_layer(model, layer_name: str):
    outer, _, inner = layer_name.partition("/")
    layer = _get_layer(model, outer)
    return _find_layer(layer, inner) if inner else layer


def _pre_activation_fn(model, layer_name: str) -> Callable:
    """f(x) -> the layer's values *before* its activation (ReLU), when it is a convolution.

    Gradient ascent on a ReLU output is stuck when the filter is silent on the starting noise
    (zero gradient everywhere), which happens often on MNIST; the pre-activation always has a
    gradient, and raising it raises the activation too (Lucid optimises "pre_relu" the same way)."""
    from keras import ops

    layer = _find_layer(model, layer_name)
    if not hasattr(layer, "convolution_op") or getattr(layer, "data_format", "channels_last") != "channels_last":
        return _split_fn(model, layer_name, "output")
    inputs_fn = _split_fn(model, layer_name, "input")

    def fn(x):
        pre = layer.convolution_op(inputs_fn(x), layer.kernel)
        if layer.use_bias:
            pre = ops.add(pre, layer.bias)
        return pre
    return fn


def _input_hw(model) -> tuple[int | None, int | None, int]:
    shape = tuple(model.input_shape)
    if len(shape) != 4:
        raise ValueError(f"This model takes inputs of shape {shape[1:]}, not images (height, width, channels).")
    return shape[1], shape[2], int(shape[3])


def _batch(images: np.ndarray, channels: int) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2 or (x.ndim == 3 and channels == 1 and x.shape[-1] != 1):
        x = x[..., None]
    if x.ndim == 3:
        x = x[None]
    return x


def predict_probs(model, images: np.ndarray, batch_size: int = 512, preprocess: Preprocess | None = None) -> np.ndarray:
    """Class probabilities (n, classes); a single sigmoid output becomes two columns [1-p, p]."""
    *_, channels = _input_hw(model)
    x = _batch(images, channels)
    outs = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        outs.append(np.asarray(model(preprocess(xb) if preprocess else xb, training=False), dtype=np.float64))
    out = np.concatenate(outs) if outs else np.zeros((0, 1))
    if out.ndim == 2 and out.shape[1] == 1:
        out = np.concatenate([1.0 - out, out], axis=1)
    return out


def feature_maps(model, layer_name: str, image: np.ndarray, preprocess: Preprocess | None = None) -> np.ndarray:
    """The layer's feature maps for one image: (height, width, filters)."""
    *_, channels = _input_hw(model)
    x = _batch(image, channels)[:1]
    acts = np.asarray(_split_fn(model, layer_name, "output")(preprocess(x) if preprocess else x))
    if acts.ndim != 4:
        raise ValueError(f"{layer_name!r} outputs shape {acts.shape[1:]}, not feature maps.")
    return acts[0]


def filter_activations(model, layer_name: str, images: np.ndarray, batch_size: int = 256,
                       preprocess: Preprocess | None = None) -> np.ndarray:
    """Mean activation of every filter on every image: (n_images, filters)."""
    *_, channels = _input_hw(model)
    x = _batch(images, channels)
    fn = _split_fn(model, layer_name, "output")
    rows = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        acts = np.asarray(fn(preprocess(xb) if preprocess else xb), dtype=np.float64)
        rows.append(acts.mean(axis=(1, 2)) if acts.ndim == 4 else acts)
    return np.concatenate(rows)


def top_activating(model, layer_name: str, filter_index: int, images: np.ndarray, k: int = 5, *,
                   activations: np.ndarray | None = None,
                   preprocess: Preprocess | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices, mean activations) of the k images that excite one filter most, highest first.

    Pass ``activations`` from ``filter_activations`` to rank many filters with one forward pass."""
    acts = filter_activations(model, layer_name, images, preprocess=preprocess) if activations is None else activations
    if not 0 <= filter_index < acts.shape[1]:
        raise ValueError(f"{layer_name!r} has {acts.shape[1]} filters (0 to {acts.shape[1] - 1}); "
                         f"filter {filter_index} does not exist.")
    column = acts[:, filter_index]
    order = np.argsort(-column, kind="stable")[:k]
    return order, column[order]


def rank_filters(maps: np.ndarray) -> pd.DataFrame:
    """Filters ranked by mean activation on one image's feature maps (from ``feature_maps``)."""
    maps = np.asarray(maps, dtype=np.float64)
    frame = pd.DataFrame({"filter": np.arange(maps.shape[-1]), "mean activation": maps.mean(axis=(0, 1)),
                          "max activation": maps.max(axis=(0, 1)),
                          "active area": (maps > 0).mean(axis=(0, 1))})
    return frame.sort_values("mean activation", ascending=False, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Filter exemplars: gradient ascent on the input
# --------------------------------------------------------------------------------------------


def initial_noise(height: int, width: int, channels: int, seed: int = 0,
                  value_range: ValueRange = (0.0, 1.0)) -> np.ndarray:
    """The starting image: grey with faint uniform noise (Graetz starts near 150-180 of 255)."""
    rng = np.random.default_rng(seed)
    unit = rng.uniform(0.4, 0.6, size=(height, width, channels)).astype(np.float32)
    lo, hi = value_range
    return lo + unit * (hi - lo)


def _stage_sizes(final: tuple[int, int], stages: int, factor: float) -> list[tuple[int, int]]:
    sizes = []
    for s in range(stages):
        shrink = factor ** (stages - 1 - s)
        sizes.append((max(4, round(final[0] / shrink)), max(4, round(final[1] / shrink))))
    return sizes


def _ascent_step(model, layer_name: str, target_hw: tuple[int, int] | None, use_scale: bool,
                 tv_weight: float, value_range: ValueRange, preprocess: Preprocess | None):
    """A compiled gradient-ascent step, cached so a grid of filters traces it once."""
    import tensorflow as tf

    key = ("ascent", layer_name, target_hw, use_scale, float(tv_weight), tuple(value_range), preprocess)
    with _FN_LOCK:
        cached = _FN_CACHE.setdefault(model, {}).get(key)
    if cached is not None:
        return cached
    features = _pre_activation_fn(model, layer_name)
    lo, hi = float(value_range[0]), float(value_range[1])

    # autograph=False: the step's branches are plain Python on settings fixed per trace, so there is
    # nothing to convert, and autograph's source transformation was ~80% of the trace (profiled).
    @tf.function(reduce_retracing=True, autograph=False)
    def step(img, filter_index, shift, scale_factor, step_size):
        with tf.GradientTape() as tape:
            tape.watch(img)
            x = img
            size = tf.shape(x)[1:3]
            if use_scale:  # random zoom, cropped or padded back: the pattern must survive resizing
                new = tf.cast(tf.round(tf.cast(size, tf.float32) * scale_factor), tf.int32)
                x = tf.image.resize(x, new, method="bilinear")
                x = tf.image.resize_with_crop_or_pad(x, size[0], size[1])
            x = tf.roll(x, shift=shift, axis=[1, 2])  # jitter (a zero shift when switched off)
            if target_hw is not None:  # a fixed-size model sees the current stage upsampled
                x = tf.image.resize(x, target_hw, method="bilinear")
            x = lo + x * (hi - lo)
            if preprocess is not None:
                x = preprocess(x)
            acts = features(x)
            objective = tf.reduce_mean(tf.gather(acts, filter_index, axis=-1))
            if tv_weight:
                tv = tf.reduce_mean(tf.abs(img[:, 1:, :, :] - img[:, :-1, :, :])) + \
                    tf.reduce_mean(tf.abs(img[:, :, 1:, :] - img[:, :, :-1, :]))
                loss = objective - tv_weight * tv
            else:
                loss = objective
        grads = tape.gradient(loss, img)
        grads = grads / (tf.sqrt(tf.reduce_mean(tf.square(grads))) + 1e-8)  # normalised step
        return tf.clip_by_value(img + step_size * grads, 0.0, 1.0), objective

    with _FN_LOCK:
        _FN_CACHE.setdefault(model, {})[key] = step
    return step


def filter_exemplar(model, layer_name: str, filter_index: int, *, steps: int = 30, step_size: float = 0.05,
                    size: int | None = None, upscaling_steps: int = 2, upscale_factor: float = 1.2,
                    jitter: int = 0, scale: float = 0.0, blur: float = 0.0, tv_weight: float = 0.0,
                    seed: int = 0, value_range: ValueRange = (0.0, 1.0), preprocess: Preprocess | None = None,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """An image that strongly excites one filter, found by gradient ascent on the input.

    Starts from ``initial_noise`` at a small size and runs ``steps`` normalised gradient steps in
    total, spread over ``upscaling_steps + 1`` stages; between stages the image is enlarged by
    ``upscale_factor`` (and blurred), so coarse structure forms first (Graetz's method).
    Regularisers, each off at 0: ``jitter`` (random shift up to that many pixels), ``scale``
    (random zoom up to +-scale), ``blur`` (Gaussian sigma between stages and every 4 steps),
    ``tv_weight`` (total-variation penalty). Without them the result tends to be high-frequency
    noise that no real image contains.

    Returns an (H, W, C) float32 image at the model's input size (``size`` for models that take
    any size) in the model's own scale ``value_range``, ready to feed back to the model.
    ``progress(done, total)`` is called after every step."""
    import tensorflow as tf
    from scipy.ndimage import gaussian_filter

    h, w, channels = _input_hw(model)
    if steps < 1:
        raise ValueError("Use at least 1 gradient step.")
    if upscaling_steps < 0 or upscale_factor < 1.0:
        raise ValueError("upscaling_steps must be >= 0 and upscale_factor >= 1.")
    if not step_size > 0:
        raise ValueError("The step size must be positive.")
    if h is None or w is None:
        final = (int(size or 128),) * 2
        if final[0] < 16:
            raise ValueError("Use an image size of at least 16 pixels.")
        target_hw = None  # fully convolutional: feed each stage at its own size
    else:
        if size is not None and size != h:
            raise ValueError(f"This model only takes {h}x{w} images; leave the size at {h}.")
        final, target_hw = (h, w), (h, w)
    n_filters = int(_get_layer_shape(model, layer_name)[-1])
    if not 0 <= filter_index < n_filters:
        raise ValueError(f"{layer_name!r} has {n_filters} filters (0 to {n_filters - 1}); "
                         f"filter {filter_index} does not exist.")

    rng = np.random.default_rng(seed)
    stages = upscaling_steps + 1
    sizes = _stage_sizes(final, stages, upscale_factor)
    per_stage = [len(a) for a in np.array_split(np.arange(steps), stages)]
    unit = rng.uniform(0.4, 0.6, size=(*sizes[0], channels)).astype(np.float32)
    step = _ascent_step(model, layer_name, target_hw, scale > 0, tv_weight, value_range, preprocess)
    done = 0
    for s, (stage_hw, n_steps) in enumerate(zip(sizes, per_stage)):
        if s > 0:  # enlarge the previous stage's result, then smooth away its pixel grid
            unit = tf.image.resize(unit[None], stage_hw, method="bicubic")[0].numpy()
            if blur > 0:
                unit = gaussian_filter(unit, sigma=(blur, blur, 0))
            unit = np.clip(unit, 0.0, 1.0).astype(np.float32)
        img = tf.constant(unit[None])
        for i in range(n_steps):
            shift = rng.integers(-jitter, jitter + 1, size=2) if jitter > 0 else np.zeros(2, dtype=np.int64)
            factor = rng.uniform(1.0 - scale, 1.0 + scale) if scale > 0 else 1.0
            img, _ = step(img, tf.constant(filter_index, tf.int32), tf.constant(shift, tf.int32),
                          tf.constant(factor, tf.float32), tf.constant(step_size, tf.float32))
            if blur > 0 and (i + 1) % 4 == 0 and i + 1 < n_steps:
                img = tf.constant(gaussian_filter(img.numpy(), sigma=(0, blur * 0.5, blur * 0.5, 0)))
            done += 1
            if progress is not None:
                progress(done, steps)
        unit = img.numpy()[0]
    if target_hw is not None and unit.shape[:2] != tuple(target_hw):
        unit = np.clip(tf.image.resize(unit[None], target_hw, method="bilinear")[0].numpy(), 0, 1)
    lo, hi = value_range
    return (lo + unit * (hi - lo)).astype(np.float32)


def _get_layer_shape(model, layer_name: str) -> tuple:
    outer, _, inner = layer_name.partition("/")
    layer = _get_layer(model, outer)
    if inner:
        return _get_layer_shape(layer, inner)
    return tuple(layer.output.shape)


def filter_count(model, layer_name: str) -> int:
    """How many filters (output channels) a layer has."""
    return int(_get_layer_shape(model, layer_name)[-1])


# --------------------------------------------------------------------------------------------
# Saliency and Grad-CAM
# --------------------------------------------------------------------------------------------


def _class_score(out, class_index: int):
    """The probability of one class; for a single sigmoid unit, class 0 is 1 - p."""
    import tensorflow as tf

    if out.shape[-1] == 1:
        p = out[:, 0]
        return p if class_index == 1 else 1.0 - p
    return tf.gather(out, class_index, axis=-1)


def _check_class(model, image, class_index, preprocess) -> tuple[np.ndarray, int]:
    *_, channels = _input_hw(model)
    x = _batch(image, channels)[:1]
    probs = predict_probs(model, x, preprocess=preprocess)[0]
    if class_index is None:
        return x, int(np.argmax(probs))
    if not 0 <= int(class_index) < len(probs):
        raise ValueError(f"The model has {len(probs)} classes (0 to {len(probs) - 1}); "
                         f"class {class_index} does not exist.")
    return x, int(class_index)


def saliency_map(model, image: np.ndarray, class_index: int | None = None,
                 preprocess: Preprocess | None = None) -> np.ndarray:
    """|d log p(class) / d pixel|, maximum over colour channels, scaled to [0, 1]: (H, W).

    Log-probability keeps the gradient useful when the model is very confident."""
    import tensorflow as tf

    x, class_index = _check_class(model, image, class_index, preprocess)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = model(preprocess(xt) if preprocess else xt, training=False)
        score = tf.math.log(_class_score(out, class_index) + 1e-12)
    grads = np.abs(tape.gradient(score, xt).numpy()[0]).max(axis=-1)
    top = grads.max()
    return (grads / top if top > 0 else grads).astype(np.float32)


def grad_cam(model, image: np.ndarray, class_index: int | None = None, layer_name: str | None = None,
             preprocess: Preprocess | None = None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., 2017) at the input's size, in [0, 1]: (H, W).

    Weights each feature map of ``layer_name`` (default: the last conv layer) by the mean
    gradient of the class score over it, keeps the positive sum, and upsamples it."""
    import tensorflow as tf

    x, class_index = _check_class(model, image, class_index, preprocess)
    layer_name = layer_name or last_conv_layer(model)
    fn = _split_fn(model, layer_name, "both")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        acts, out = fn(preprocess(xt) if preprocess else xt)
        tape.watch(acts)
        score = _class_score(out, class_index)
    grads = tape.gradient(score, acts)
    if grads is None or len(acts.shape) != 4:
        raise ValueError(f"Grad-CAM needs a convolution layer with feature maps; {layer_name!r} has none.")
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * acts, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[0, :, :, 0].numpy()
    cam = np.maximum(cam, 0.0)
    top = cam.max()
    return (cam / top if top > 0 else cam).astype(np.float32)


def images_from_fit(fit_kwargs: dict, limit: int = 500) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, y) from a training run's validation data (arrays or a tf.data set), for models whose
    dataset this page does not load itself (the learner's cats/dogs model)."""
    val = fit_kwargs.get("validation_data")
    if val is None:
        return None
    if isinstance(val, (tuple, list)) and len(val) >= 2:
        x, y = np.asarray(val[0])[:limit], np.asarray(val[1])[:limit]
        return x, y.reshape(len(y), -1).argmax(axis=1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1)
    if hasattr(val, "take") and hasattr(val, "as_numpy_iterator"):
        xs, ys, n = [], [], 0
        for xb, yb in val.as_numpy_iterator():
            xs.append(np.asarray(xb))
            ys.append(np.asarray(yb).reshape(len(xb), -1))
            n += len(xb)
            if n >= limit:
                break
        if not xs:
            return None
        x, y = np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]
        return x, (y.argmax(axis=1) if y.shape[1] > 1 else y[:, 0])
    return None


def guess_value_range(images: np.ndarray) -> ValueRange:
    """(0, 255) when the images hold raw pixel values, else (0, 1)."""
    return (0.0, 255.0) if float(np.max(images)) > 1.5 else (0.0, 1.0)


def fit_image(image: np.ndarray, shape: tuple[int | None, int | None, int], value_range: ValueRange = (0.0, 1.0),
              size: int = 224) -> np.ndarray:
    """A uint8 picture (HxW or HxWx3) -> a float32 model input of ``shape`` in ``value_range``.

    Resizes to the model's height and width (``size`` when the model takes any size) and turns
    colour into gray or back as the model's channels require."""
    from PIL import Image

    h, w, channels = shape
    h, w = h or size, w or size
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8) if img.max() <= 1.0 else np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    pil = Image.fromarray(img).convert("L" if channels == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
    arr = np.asarray(pil, dtype=np.float32) / 255.0
    if channels == 1:
        arr = arr[..., None]
    lo, hi = value_range
    return (lo + arr * (hi - lo)).astype(np.float32)


def regularisers(size: int, jitter: bool, scale: bool, blur: bool, tv: bool) -> dict[str, float]:
    """The regulariser strengths behind the page's on/off switches, scaled to the image size."""
    return {"jitter": max(1, round(size / 32)) if jitter else 0, "scale": 0.05 if scale else 0.0,
            "blur": (0.5 if size <= 64 else 1.0) if blur else 0.0, "tv_weight": 1.0 if tv else 0.0}


@dataclass
class ModelChoice:
    """A model the page can look inside, with what the page needs to feed it."""

    key: str  # stable option id: "default", "vgg16", "mnist:0", "catsdogs:0:VGG16 frozen", "upload:1a2b3c4d"
    label: str
    model: Any
    kind: str  # "mnist", "catsdogs", "vgg16" or "upload" (a learner's own .keras file)
    value_range: ValueRange = (0.0, 1.0)
    preprocess: Preprocess | None = None
    class_names: tuple[str, ...] = ()  # empty: no classifier (the VGG16 base)
    images: np.ndarray | None = None  # dataset images in the model's input shape and scale
    labels: np.ndarray | None = None
    images_note: str = ""

    @property
    def classifier(self) -> bool:
        return bool(self.class_names)

    @property
    def input_shape(self) -> tuple[int | None, int | None, int]:
        return _input_hw(self.model)

    def display(self, image: np.ndarray) -> np.ndarray:
        """An image in this model's scale -> uint8 for plotting. VGG16's inputs and exemplars are
        stretched to their own range: their values are not a photo's."""
        stretch = self.kind == "vgg16"
        return to_display(image, None if stretch else self.value_range, stretch=stretch)

    @property
    def digit_input(self) -> bool:
        """Whether the model reads grey digits (an upload is then prepared like an MNIST digit)."""
        return self.kind == "mnist" or (self.kind == "upload" and self.input_shape[2] == 1)

    def prepare_upload(self, picture: np.ndarray) -> tuple[np.ndarray, str]:
        """A learner's uploaded picture (uint8) -> (this model's input, what was done to it). Digit
        models get it inverted, cropped and centred like an MNIST digit, then sized to their input."""
        from dnn2core import digits

        h, w, _ = self.input_shape
        if self.digit_input:
            digit = digits.digit_from_image(picture)
            said = "Your upload, inverted, cropped and centred like an MNIST digit"
            if (h or 28, w or 28) == (28, 28) and self.value_range == (0.0, 1.0):
                return digit[..., None].astype(np.float32), said + "."
            image = fit_image((digit * 255).round().astype(np.uint8), self.input_shape, self.value_range, size=28)
            return image, f"{said}, at {image.shape[1]}x{image.shape[0]}."
        image = fit_image(picture, self.input_shape, self.value_range)
        return image, f"Your upload, resized to {image.shape[1]}x{image.shape[0]}."


# --------------------------------------------------------------------------------------------
# A learner's own model: can the page look inside it?
# --------------------------------------------------------------------------------------------

MAX_INPUT_SIDE = 512  # exemplars and Grad-CAM on larger inputs would take minutes on a CPU
MAX_CLASSES = 1000


@dataclass(frozen=True)
class ClassifierCheck:
    """What ``check_image_classifier`` found out about a model."""

    input_shape: tuple[int | None, int | None, int]
    n_classes: int  # 1: a single sigmoid unit (two classes)
    output: str  # "probabilities", or "logits" when a softmax/sigmoid was put on the last layer
    value_range: ValueRange  # (0, 255) when the model starts with a Rescaling layer, else (0, 1)
    conv_layers: tuple[str, ...]

    def summary(self) -> str:
        h, w, c = self.input_shape
        size = f"{h or 'any'}x{w or 'any'}x{c}"
        classes = "2 classes (one sigmoid unit)" if self.n_classes == 1 else f"{self.n_classes} classes"
        scale = "0-255" if self.value_range[1] > 1 else "0-1"
        return (f"input {size} (pixels {scale}), {len(self.conv_layers)} Conv2D layer(s), {classes}, "
                + ("class probabilities" if self.output == "probabilities" else
                   "logits (a softmax is applied so every tab reads probabilities)"))


def _activation_name(fn) -> str:
    name = getattr(fn, "__name__", None) or str(fn)
    return name.lower()


def check_image_classifier(model) -> ClassifierCheck:
    """Check that a model (a learner's upload) is something this page can look inside, and make its
    output probabilities. Raises ValueError with the reason, in a learner's words.

    Needs one image input (height, width, channels with 1 or 3 channels, at most MAX_INPUT_SIDE a
    side), at least one Conv2D layer (nested ones count) and one output of class scores (batch,
    classes) that ends in a softmax or sigmoid, or in a linear layer (logits). Logits get a softmax
    (a sigmoid for a single unit) put on that last layer, so saliency, Grad-CAM and the attack all
    read probabilities. Finally the model must run on a blank image and give finite scores."""
    import keras

    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError):
        raise ValueError("This model has no defined input shape (it was saved before it was built).") from None
    if len(inputs) != 1:
        raise ValueError(f"This model takes {len(inputs)} inputs; the page feeds it one image.")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise ValueError(f"This model takes inputs of shape {shape[1:]}, not images (height, width, channels).")
    h, w, c = shape[1], shape[2], shape[3]
    if c not in (1, 3):
        raise ValueError(f"This model's input has {c} channels; the page feeds grey (1) or colour (3) images.")
    for side in (h, w):
        if side is not None and not 8 <= side <= MAX_INPUT_SIDE:
            raise ValueError(f"This model's input is {h}x{w} pixels; the page handles 8 to {MAX_INPUT_SIDE} "
                             "pixels a side.")
    convs = conv_layers(model)
    if not convs:
        raise ValueError("This model has no Conv2D layer, so it has no filters or feature maps to look inside.")
    try:
        outputs = list(model.outputs)
    except (AttributeError, ValueError):
        outputs = []
    if len(outputs) != 1:
        raise ValueError(f"This model has {len(outputs)} outputs; the page needs one output of class scores.")
    out_shape = tuple(outputs[0].shape)
    if len(out_shape) != 2 or out_shape[-1] is None or not 1 <= out_shape[-1] <= MAX_CLASSES:
        raise ValueError(f"This model outputs shape {out_shape[1:]}, not one score per class (at most "
                         f"{MAX_CLASSES:,} classes).")
    n_classes = int(out_shape[-1])
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        output = "probabilities"
    elif hasattr(last, "activation") and last.activation is not None:
        act = _activation_name(last.activation)
        if act in ("softmax", "sigmoid"):
            output = "probabilities"
        elif act == "linear":
            output = "logits"
            last.activation = keras.activations.get("sigmoid" if n_classes == 1 else "softmax")
        else:
            raise ValueError(f"This model's last layer ({last.name}) ends in {act}: its outputs are not class "
                             "probabilities or logits. End it with a softmax (or a linear layer of logits).")
    else:
        raise ValueError(f"This model's last layer ({last.name}, {type(last).__name__}) gives no class "
                         "probabilities or logits. End it with Dense(classes, activation='softmax').")
    first = next(iter(_chain(model)), None)
    value_range = (0.0, 255.0) if isinstance(first, keras.layers.Rescaling) else (0.0, 1.0)
    probe = np.full((1, h or 32, w or 32, c), value_range[1] / 2, dtype=np.float32)
    try:
        scores = np.asarray(model(probe, training=False))
    except Exception as exc:  # noqa: BLE001 - whatever a learner's model raises on a plain image
        raise ValueError(f"This model failed on a test image ({type(exc).__name__}).") from None
    if scores.shape != (1, n_classes) or not np.all(np.isfinite(scores)):
        raise ValueError(f"On a test image this model gave scores of shape {scores.shape[1:]} "
                         f"{'with' if not np.all(np.isfinite(scores)) else 'and no'} NaN or infinite values; "
                         f"expected {n_classes} finite scores.")
    return ClassifierCheck((h, w, c), n_classes, output, value_range, tuple(convs))


def uploaded_model_choice(model, key: str, label: str, check: ClassifierCheck, *,
                          digits: tuple[np.ndarray, np.ndarray] | None = None,
                          photos: np.ndarray | None = None) -> ModelChoice:
    """A learner's checked model as a page option, with images it can take: MNIST test digits (in
    [0, 1], their labels kept when the model has 10 classes) for a grey input, the sample photos (in
    [0, 1], no labels) for a colour one, each resized to the input and put in its scale."""
    h, w, c = check.input_shape
    lo, hi = check.value_range
    images, labels, note = None, None, "no dataset images for this model"
    if c == 1 and digits is not None:
        x, y = digits
        if (h or 28, w or 28) == (28, 28):
            images = np.asarray(x, dtype=np.float32)
        else:
            images = np.stack([fit_image(d, check.input_shape, size=28) for d in x])
        labels = np.asarray(y) if check.n_classes == 10 else None
        note = f"{len(images):,} MNIST test digits" + (f", resized to {images.shape[2]}x{images.shape[1]}"
                                                        if images.shape[1:3] != (28, 28) else "")
    elif c == 3 and photos is not None and len(photos):
        images = np.stack([fit_image(p, check.input_shape, size=224) for p in photos])
        note = f"the {len(images)} built-in sample photos, resized to {images.shape[2]}x{images.shape[1]}"
    if images is not None:
        images = (lo + images * (hi - lo)).astype(np.float32)
    names = tuple(str(d) for d in range(10)) if c == 1 and check.n_classes == 10 else \
        tuple(f"class {i}" for i in range(max(check.n_classes, 2)))
    return ModelChoice(key, label, model, "upload", value_range=check.value_range, class_names=names,
                       images=images, labels=labels, images_note=note)


def array_digest(a: np.ndarray) -> str:
    """A short fingerprint of an array's values, shape and type: keys the page's caches of results
    per image (hashing a 224x224x3 image takes well under a millisecond)."""
    import hashlib

    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{a.dtype}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


REGULARISER_NAMES = ("jitter", "scale", "blur", "tv_weight")


class ExemplarSettings(NamedTuple):
    """Everything besides the model, layer and filter that changes an exemplar. A hashable tuple
    (seed last), so it keys the page's cache: settings generated before show at once."""

    steps: int
    step_size: float
    size: int  # only for models that take any size (VGG16); others use their input size
    stages: int  # upscaling stages
    regularisers: tuple[tuple[str, float], ...]  # sorted (name, strength) pairs
    seed: int

    @classmethod
    def from_switches(cls, *, steps: int, step_size: float, size: int, stages: int, jitter: bool, scale: bool,
                      blur: bool, tv: bool, seed: int) -> "ExemplarSettings":
        """The page's controls (on/off regularisers) as settings with the strengths ``regularisers`` gives."""
        regs = regularisers(int(size), jitter, scale, blur, tv)
        return cls(int(steps), float(step_size), int(size), int(stages), tuple(sorted(regs.items())), int(seed))

    def regulariser_names(self) -> str:
        """The regularisers that are on, in the page's order ("none" if none)."""
        on = dict(self.regularisers)
        return ", ".join(n for n in REGULARISER_NAMES if on.get(n)) or "none"


def filter_exemplars(choice: ModelChoice, layer: str, filters: Sequence[int], settings: ExemplarSettings,
                     progress: Callable[[float, str], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Several filters' exemplars, one after the other, each yielded as soon as it exists (a caller
    that caches them keeps the finished ones if the rest is interrupted). ``progress(fraction, text)``
    follows the steps of all of them together, every 5 steps."""
    fixed_size = choice.input_shape[0] is not None
    total = max(len(filters) * settings.steps, 1)
    for n, f in enumerate(filters):
        def report(done: int, steps: int, n: int = n, f: int = f) -> None:
            if progress is not None and (done == steps or done % 5 == 0):
                progress(min((n * settings.steps + done) / total, 1.0),
                         f"Filter {f}: step {done}/{steps} ({n + 1} of {len(filters)})")
        yield f, filter_exemplar(choice.model, layer, int(f), steps=settings.steps, step_size=settings.step_size,
                                 size=None if fixed_size else settings.size, upscaling_steps=settings.stages,
                                 seed=settings.seed, value_range=choice.value_range, preprocess=choice.preprocess,
                                 progress=report, **dict(settings.regularisers))


def exemplar_grid(choice: ModelChoice, layer: str, exemplars: dict[int, np.ndarray], top_k: int,
                  activations: np.ndarray | None = None) -> tuple[list[list[np.ndarray]], list[list[str]]]:
    """Rows and titles for ``image_grid_figure``: each filter's exemplar with the mean activation it
    reaches, then the ``top_k`` dataset images that excite that filter most, with theirs (and their
    class) on a second line, so titles stay short enough for narrow tiles. ``activations``: the
    dataset's ``filter_activations`` (None: exemplars only)."""
    filters = list(exemplars)
    if not filters:
        return [], []
    reached = filter_activations(choice.model, layer, np.stack([exemplars[f] for f in filters]),
                                 preprocess=choice.preprocess)
    rows, titles = [], []
    for n, f in enumerate(filters):
        row, title = [choice.display(exemplars[f])], [f"filter {f}<br>reaches {reached[n, f]:.2f}"]
        if activations is not None and choice.images is not None and top_k > 0:
            idx, vals = top_activating(choice.model, layer, f, choice.images, int(top_k), activations=activations)
            for i, v in zip(idx, vals):
                row.append(choice.display(choice.images[i]))
                label = f"<br>label {choice.class_names[int(choice.labels[i])]}" if choice.labels is not None else ""
                title.append(f"{v:.2f}{label}")
        rows.append(row)
        titles.append(title)
    return rows, titles


# --------------------------------------------------------------------------------------------
# --- figures
# --------------------------------------------------------------------------------------------


def to_display(image: np.ndarray, value_range: ValueRange | None = None, stretch: bool = False) -> np.ndarray:
    """Any model-scale image -> uint8 HxW or HxWx3 for plotting (stretch: use its own min-max)."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if stretch or value_range is None:
        lo, hi = float(img.min()), float(img.max())
    else:
        lo, hi = value_range
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


TITLE_FONT_PX = 13  # tile titles: readable at 1280x720 and on a projector (the presenter view enlarges them)
_TITLE_LINE_PX = 17


def _axis_names(k: int) -> tuple[str, str]:
    """(trace axis ids, layout keys) of tile k (1-based): ("x2", "y2"), ("xaxis2", "yaxis2")."""
    suffix = "" if k == 1 else str(k)
    return f"x{suffix}", f"y{suffix}"


def _image_traces(img: np.ndarray, xy: tuple[str, str], hover: str = "") -> list[dict]:
    """One image as plain trace dicts on axes ``xy``: RGB as an Image trace, grey as a grey heat map
    (its hover shows the pixel value)."""
    x, y = xy
    if img.ndim == 3:
        return [dict(type="image", z=img, xaxis=x, yaxis=y, hoverinfo="skip")]
    return [dict(type="heatmap", z=img, colorscale="gray", zmin=0, zmax=255, showscale=False, xaxis=x, yaxis=y,
                 hovertemplate=(hover or "row %{y}, col %{x}: %{z}") + "<extra></extra>")]


def _tiles_figure(tiles: Sequence[tuple[int, int, list[dict], str]], n_rows: int, n_cols: int, *, cell: int,
                  title_lines: int, max_width: int | None = None) -> go.Figure:
    """A grid of square tiles, each a set of traces with its title above it.

    ``tiles``: (row, col, traces, title). Every tile's y axis is anchored to its x axis at ratio 1,
    so a picture keeps its aspect ratio however wide the page stretches the figure (no sideways
    stretching), and sits at the top of its cell, right under its title. The layout is written in
    one go instead of make_subplots and per-cell update_*axes calls, whose cost grows with the square
    of the tiles (2.4 s for a 16 x 9 grid, profiled)."""
    title_px = _TITLE_LINE_PX * title_lines + 4 if title_lines else 0
    gap_px, margin_t, margin_b = 10, 8, 4
    row_px = title_px + cell
    plot_h = n_rows * row_px + (n_rows - 1) * gap_px
    pad = 0.04 / n_cols if n_cols > 1 else 0.0
    layout: dict[str, Any] = {"height": int(plot_h + margin_t + margin_b),
                              "margin": dict(l=4, r=4, t=margin_t, b=margin_b), "showlegend": False,
                              "plot_bgcolor": "rgba(0,0,0,0)"}
    if max_width is not None:
        layout["width"] = int(max_width)
    annotations, data = [], []
    for row, col, traces, title in tiles:
        k = row * n_cols + col + 1
        xid, yid = _axis_names(k)
        top = 1.0 - row * (row_px + gap_px) / plot_h
        img_top = top - title_px / plot_h
        img_bottom = img_top - cell / plot_h
        x0, x1 = col / n_cols + pad, (col + 1) / n_cols - pad
        layout["xaxis" + xid[1:]] = dict(domain=[x0, x1], anchor=yid, visible=False, constrain="domain")
        layout["yaxis" + yid[1:]] = dict(domain=[max(img_bottom, 0.0), img_top], anchor=xid, visible=False,
                                         autorange="reversed", scaleanchor=xid, scaleratio=1, constrain="domain",
                                         constraintoward="top")
        for t in traces:
            data.append({**t, "xaxis": xid, "yaxis": yid})
        if title:
            annotations.append(dict(text=title, x=(x0 + x1) / 2, y=img_top, xref="paper", yref="paper",
                                    xanchor="center", yanchor="bottom", yshift=2, showarrow=False,
                                    font=dict(size=TITLE_FONT_PX)))
    layout["annotations"] = annotations
    return go.Figure(data=data, layout=layout)


def _fit_tile(img: np.ndarray, side: int, colour: bool) -> np.ndarray:
    """One uint8 picture in a white side x side square, its aspect ratio kept (centred), resized
    with nearest neighbours so a 28-pixel digit stays crisp."""
    from PIL import Image

    img = np.asarray(img, dtype=np.uint8)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if colour and img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    h, w = img.shape[:2]
    f = side / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    if (nh, nw) != (h, w):
        img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.Resampling.NEAREST))
    out = np.full((side, side, 3) if colour else (side, side), 255, np.uint8)
    top, left = (side - nh) // 2, (side - nw) // 2
    out[top:top + nh, left:left + nw] = img
    return out


GRID_WIDTH_PX = 800  # the main column at 1280 pixels wide with the sidebar open: grids are sized to fit it


def image_grid_figure(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[Sequence[str]],
                      cell: int = 120, max_width: int = GRID_WIDTH_PX) -> go.Figure:
    """A grid of uint8 images (rows of equal length) as square tiles with their titles (which may
    hold a line break, ``<br>``) above them; used for exemplars next to the images that excite the
    same filter most. ``cell``: a tile's side in pixels on the page, made smaller when the columns
    would not fit in ``max_width`` (so the figure's height is right and nothing is shrunk later).

    The tiles are drawn as one picture (a PNG mosaic, white between tiles, each picture fitted into
    its square with its aspect ratio kept) whose y axis is tied to its x axis, so the page cannot
    stretch it sideways; the titles are annotations in the picture's coordinates. One trace instead
    of one per tile: the browser drew a 12 x 9 grid of heat maps in ~1.5 s of every rerun, and
    make_subplots spent 2.4 s building a 16 x 9 one (both profiled)."""
    import base64
    import io

    from PIL import Image

    grid = [[np.asarray(img) for img in r] for r in rows]
    n_rows = max(len(grid), 1)
    n_cols = max((len(r) for r in grid), default=1)
    flat = [img for r in grid for img in r]
    colour = any(img.ndim == 3 and img.shape[-1] == 3 for img in flat)
    gap_css = 14
    cell = int(max(40, min(cell, (max_width - 8 - (n_cols - 1) * gap_css) // n_cols)))
    side = min(max((max(img.shape[:2]) for img in flat), default=1), cell)  # picture pixels per tile (<= its size)
    per_css = side / cell  # picture pixels per page pixel
    lines = max((t.count("<br>") + 1 for ts in titles for t in ts if t), default=0)
    title_css = _TITLE_LINE_PX * lines + 8 if lines else 4
    band, gap = round(title_css * per_css), max(1, round(gap_css * per_css))
    row_h, col_w = band + side + gap, side + gap
    height, width = n_rows * row_h - gap, n_cols * col_w - gap
    mosaic = np.full((height, width, 3) if colour else (height, width), 255, np.uint8)
    annotations = []
    padded = list(titles) + [[]] * (len(grid) - len(titles))
    for i, (r, ts) in enumerate(zip(grid, padded)):
        ts = list(ts) + [""] * (len(r) - len(ts))
        for j, img in enumerate(r):
            y0, x0 = i * row_h + band, j * col_w
            mosaic[y0:y0 + side, x0:x0 + side] = _fit_tile(img, side, colour)
            if ts[j]:
                annotations.append(dict(text=ts[j], x=x0 + (side - 1) / 2, y=y0 - 0.5, xref="x", yref="y",
                                        xanchor="center", yanchor="bottom", yshift=2, showarrow=False,
                                        font=dict(size=TITLE_FONT_PX)))
    buf = io.BytesIO()
    Image.fromarray(mosaic).save(buf, "PNG", optimize=False, compress_level=3)
    source = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    margin_t, margin_b = 4, 4
    layout = dict(
        height=int(n_rows * (title_css + cell + gap_css) - gap_css + margin_t + margin_b), showlegend=False,
        margin=dict(l=4, r=4, t=margin_t, b=margin_b), plot_bgcolor="rgba(0,0,0,0)", annotations=annotations,
        xaxis=dict(visible=False, range=[-0.5, width - 0.5], constrain="domain"),
        yaxis=dict(visible=False, range=[height - 0.5, -0.5], scaleanchor="x", scaleratio=1, constrain="domain",
                   constraintoward="top"))
    return go.Figure(data=[dict(type="image", source=source, hoverinfo="skip")], layout=layout)


def maps_and_exemplars_figure(maps: Sequence[np.ndarray], exemplars: Sequence[np.ndarray | None],
                              titles: Sequence[str], image: np.ndarray | None = None) -> go.Figure:
    """Top filters as columns: the feature map on this image above the filter's exemplar, square tiles."""
    k = len(maps)
    has_ex = any(e is not None for e in exemplars)
    tiles = []
    for j, m in enumerate(maps):
        heat = dict(type="heatmap", z=np.asarray(m, dtype=np.float64), colorscale="Viridis", showscale=False,
                    hovertemplate="%{z:.3f}<extra></extra>")
        tiles.append((0, j, [heat], f"{titles[j]}<br>feature map"))
        if has_ex and exemplars[j] is not None:
            tiles.append((1, j, _image_traces(np.asarray(exemplars[j]), ("x", "y")), f"{titles[j]}<br>exemplar"))
    return _tiles_figure(tiles, 2 if has_ex else 1, max(k, 1), cell=170, title_lines=2)


def heat_overlay_figure(image: np.ndarray, heats: Sequence[np.ndarray], titles: Sequence[str]) -> go.Figure:
    """The image, then each heat map (saliency, Grad-CAM) drawn over a faded copy of it, square tiles."""
    gray = image if image.ndim == 2 else image.mean(axis=2)
    tiles = [(0, 0, _image_traces(np.asarray(image), ("x", "y")), "input")]
    for j, heat in enumerate(heats):
        tiles.append((0, j + 1, [
            dict(type="heatmap", z=gray, colorscale="gray", showscale=False, opacity=0.6, hoverinfo="skip"),
            dict(type="heatmap", z=heat, colorscale="Inferno", zmin=0, zmax=1, opacity=0.65,
                 showscale=j == len(heats) - 1, colorbar=dict(thickness=12, len=0.8),
                 hovertemplate="%{z:.2f}<extra></extra>")], titles[j]))
    return _tiles_figure(tiles, 1, 1 + len(heats), cell=260, title_lines=1)


def ranking_figure(ranking: pd.DataFrame, top: int = 5) -> go.Figure:
    """Mean activation of every filter on the image, highest first; the top ones highlighted."""
    colors = ["#d62728" if i < top else "#9aa5b1" for i in range(len(ranking))]
    fig = go.Figure(go.Bar(x=[str(f) for f in ranking["filter"]], y=ranking["mean activation"],
                           marker_color=colors, hovertemplate="filter %{x}: %{y:.3f}<extra></extra>"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), title="Mean activation per filter",
                      xaxis_title="filter (sorted)", yaxis_title="mean activation")
    fig.update_xaxes(type="category", showticklabels=len(ranking) <= 64)
    return fig
