"""Inside the network (course Video 5, learning outcome 4): filter exemplars, the hypothesis test,
saliency and Grad-CAM, and the one-pixel attack. All computation lives in dnn2core.

Reads top to bottom: cached loaders, the model and image pickers, one function per tab (each takes
what it needs as arguments), then the page itself at the bottom, calling them in order."""

import os
import time

import numpy as np
import pandas as pd
import streamlit as st

from dnn2core import adversarial, data, digits, interpret, keras_code, pretrained, runs, uploads
from dnn2core.training import Budget, ModelRun
from dnn2ui import bases as shared_bases
from dnn2ui import exercises, live
from dnn2ui.sidebar import data_banner
from dnn2ui.state import UrlState

url = UrlState("inside")

EXEMPLAR_CACHE = "inside.exemplar_cache"
ACTIVATION_CACHE = "inside.activation_cache"
ATTACK = "inside.attack_result"
MAX_CACHED = 256
MNIST_NAMES = tuple(str(d) for d in range(10))


# ----------------------------------------------------------------------------- cached loaders
@st.cache_resource(show_spinner="Training a small CNN on MNIST digits (first use on this server, about 10 s)…")
def shared_default_cnn(seed: int, where: str, size: str, epochs: str) -> interpret.DefaultCnn:
    """Shared read-only by every session: nobody trains or changes it after this.
    Keyed by the data folder and the size settings, so a changed setting trains a new one."""
    return interpret.default_mnist_cnn(seed)


def default_cnn() -> interpret.DefaultCnn:
    return shared_default_cnn(0, str(data.data_dir()), os.environ.get("DNN2_DEFAULT_CNN_TRAIN", ""),
                              os.environ.get("DNN2_DEFAULT_CNN_EPOCHS", ""))


@st.cache_data(max_entries=1, show_spinner=False)
def mnist_test(where: str, limit: int = 1000):
    loaded = data.load_mnist()
    x = loaded.data.x_test[:limit].astype(np.float32)[..., None] / 255.0
    return x, loaded.data.y_test[:limit].astype(np.int64), loaded.provenance


@st.cache_data(max_entries=1, show_spinner=False)
def vgg_sample_photos() -> tuple[np.ndarray, tuple[str, ...]]:
    names = [n for n in data.sample_image_names() if "MNIST" not in n]
    return np.stack([interpret.fit_image(data.load_sample_image(n).data, (224, 224, 3)) for n in names]), tuple(names)


# ----------------------------------------------------------------------------- small helpers
def model_choices() -> tuple[dict[str, interpret.ModelChoice], dict]:
    """Every model the learner can look inside, and how to load each (only the chosen one is loaded)."""
    x_test, y_test, prov = mnist_test(str(data.data_dir()))
    choices: dict[str, interpret.ModelChoice] = {}
    loaders: dict = {}
    for v in live.finished_models("mnist"):
        if "CNN" in v.model_names:
            k = f"mnist:{v.key[:8]}"
            choices[k] = interpret.ModelChoice(
                k, f"Your MNIST CNN ({v.snapshot().label})", None, "mnist", class_names=MNIST_NAMES,
                images=x_test, labels=y_test, images_note=f"{len(y_test):,} MNIST test digits")
            loaders[k] = lambda v=v: v.models["CNN"]
    reference = live.reference_run("mnist")
    if reference is not None and "CNN" in reference.model_names:
        choices["reference"] = interpret.ModelChoice(
            "reference", "The course's MNIST CNN (60,000 digits, 5 epochs)", None, "mnist", class_names=MNIST_NAMES,
            images=x_test, labels=y_test, images_note=f"{len(y_test):,} MNIST test digits")
        loaders["reference"] = lambda: reference.models["CNN"]
    for v in live.finished_models("cats_dogs"):
        kinds, sample = v.record.extra.get("kinds", {}), v.artifacts()
        x, y = sample.get("sample/x"), sample.get("sample/y")
        for name in v.model_names:
            if kinds.get(name) == "frozen (cached features)":
                continue  # a head trained on extracted features: it takes no images
            k = f"catsdogs:{v.key[:8]}:{name}"
            choices[k] = interpret.ModelChoice(
                k, f"Your cats/dogs model: {name}", None, "catsdogs", value_range=(0.0, 255.0),
                class_names=("cat", "dog"), images=x, labels=y,
                images_note=f"{len(y):,} of your validation images" if y is not None else "no dataset images found")
            loaders[k] = lambda v=v, name=name: v.models[name]
    choices["default"] = interpret.ModelChoice(
        "default", "Small CNN trained here (MNIST)", None, "mnist", class_names=MNIST_NAMES,
        images=x_test, labels=y_test, images_note=f"{len(y_test):,} MNIST test digits")
    loaders["default"] = lambda: default_cnn().model
    return choices, loaders


def model_identity(key: str) -> str:
    """What makes a chosen model itself, for run keys: the default CNN's training settings, or the
    run (reference or the learner's) that trained it."""
    if key == "default":
        return "default:" + os.environ.get("DNN2_DEFAULT_CNN_TRAIN", "") + ":" + os.environ.get(
            "DNN2_DEFAULT_CNN_EPOCHS", "") + ":" + str(data.data_dir().name)
    if key == "reference":
        ref = live.reference_run("mnist")
        return f"reference:{ref.key if ref else ''}"
    return key


def private_model_secret(key: str) -> str:
    """A learner's own model is theirs: attacks on it stay in their link (their cats/dogs images)."""
    return live.private_secret() if key.startswith(("mnist:", "catsdogs:")) else ""


def clamp(name: str, options: list, default) -> None:
    """Drop a remembered choice that the current model does not offer (e.g. layer 4 of 3)."""
    key = url.key(name)
    if key in st.session_state and st.session_state[key] not in options:
        st.session_state[key] = default


def remember(cache_name: str, key, value) -> None:
    """Keep a result in this session, the oldest dropped beyond MAX_CACHED."""
    cache = st.session_state.setdefault(cache_name, {})
    cache[key] = value
    while len(cache) > MAX_CACHED:
        cache.pop(next(iter(cache)))


def exemplar_key(choice: interpret.ModelChoice, layer: str, filter_index: int,
                 settings: interpret.ExemplarSettings) -> tuple:
    return (choice.key, id(choice.model), layer, int(filter_index), settings)


def cached_exemplar(choice: interpret.ModelChoice, layer: str, filter_index: int,
                    settings: interpret.ExemplarSettings) -> np.ndarray | None:
    return st.session_state.get(EXEMPLAR_CACHE, {}).get(exemplar_key(choice, layer, filter_index, settings))


def make_exemplars(choice: interpret.ModelChoice, layer: str, filters: list[int],
                   settings: interpret.ExemplarSettings) -> None:
    """Generate the missing exemplars with one progress bar for all of them."""
    missing = [f for f in filters if cached_exemplar(choice, layer, f, settings) is None]
    if not missing:
        return
    bar = st.progress(0.0, text="Generating exemplars…")
    for f, ex in interpret.filter_exemplars(choice, layer, missing, settings,
                                            progress=lambda done, text: bar.progress(done, text=text)):
        remember(EXEMPLAR_CACHE, exemplar_key(choice, layer, f, settings), ex)
    bar.empty()


def dataset_activations(choice: interpret.ModelChoice, layer: str) -> np.ndarray | None:
    """Every dataset image's mean activation per filter, once per model and layer in this session."""
    if choice.images is None or len(choice.images) == 0:
        return None
    key = (choice.key, id(choice.model), layer)
    cache = st.session_state.setdefault(ACTIVATION_CACHE, {})
    if key not in cache:
        remember(ACTIVATION_CACHE, key, interpret.filter_activations(choice.model, layer, choice.images,
                                                                     preprocess=choice.preprocess))
    return cache[key]


# ----------------------------------------------------------------------------- sidebar: the model and the image
def model_sidebar() -> tuple[str, interpret.ModelChoice, tuple[str, ...]]:
    """The model to look inside (loaded), its option key, and VGG16's sample photo names."""
    with st.sidebar:
        st.markdown("**Model to look inside**")
        choices, loaders = model_choices()
        photo_names: tuple[str, ...] = ()
        vgg_path, _, vgg_reason = pretrained.find_weights("vgg16")  # never downloads here: 58 MB by surprise
        if vgg_path is not None:
            photos, photo_names = vgg_sample_photos()
            choices["vgg16"] = interpret.ModelChoice(
                "vgg16", "VGG16 (ImageNet)", None, "vgg16", preprocess=interpret.vgg16_preprocess, images=photos,
                images_note=f"the {len(photo_names)} built-in sample photos (ImageNet is not on this server)")
        keys = list(choices)
        first = "reference" if "reference" in choices else "default"  # the course's CNN needs no training here
        clamp("model", keys, first)
        model_key = url.selectbox("model", "Model", keys, first, format_func=lambda k: choices[k].label)
        if vgg_path is None:
            st.toggle("VGG16 (ImageNet)", value=False, disabled=True, key="inside.vgg_unavailable", help=vgg_reason)
            st.caption(f"VGG16 is unavailable: {vgg_reason}")
        else:
            st.caption(vgg_reason)
        choice = choices[model_key]
        if choice.kind == "vgg16":
            choice.model = shared_bases.imagenet_base("vgg16")[0]  # the same shared base as the cats/dogs page
        else:
            choice.model = loaders[model_key]()
        if model_key == "default":
            st.caption(default_cnn().description)
        if not any(k.startswith(("mnist:", "catsdogs:")) for k in keys):
            st.caption("Train a CNN on the MNIST or cats-vs-dogs page and it appears here.")
    return model_key, choice, photo_names


def image_sidebar(choice: interpret.ModelChoice, photo_names: tuple[str, ...]) -> tuple[np.ndarray, int | None]:
    """The input image (a dataset image or an upload) and its true class when the dataset knows it."""
    with st.sidebar:
        st.markdown("**Input image**")
        source = url.radio("source", "Source", ["Dataset", "Upload"], "Dataset", horizontal=True)
        image, true_label, note = None, None, ""
        if source == "Upload":
            upload = st.file_uploader("Image file", type=list(uploads.IMAGE_EXTENSIONS), key="inside.upload")
            if upload is not None:
                try:
                    raw = uploads.image_array(upload.getvalue(), max_side=512)
                    if choice.kind == "mnist":
                        image = digits.digit_from_image(raw)[..., None]
                        note = "Your upload, inverted, cropped and centred like an MNIST digit."
                    else:
                        image = interpret.fit_image(raw, choice.input_shape, choice.value_range)
                        note = f"Your upload, resized to {image.shape[1]}x{image.shape[0]}."
                except (uploads.UploadError, ValueError) as exc:
                    st.error(f"{upload.name}: {exc} The dataset image is used instead.")
        if image is None:
            if choice.images is None or len(choice.images) == 0:
                image = interpret.fit_image(data.load_sample_image("Photo: Grace Hopper (RGB)").data,
                                            choice.input_shape, choice.value_range)
                note = "A built-in photo (this model's dataset images were not found)."
            else:
                n_images = len(choice.images)
                clamp("idx", list(range(n_images)), 0)
                idx = int(url.number("idx", f"Image number (0-{n_images - 1})", 0, 0, n_images - 1, step=1))
                image = choice.images[idx]
                if choice.labels is not None:
                    true_label = int(choice.labels[idx])
                note = f"{photo_names[idx]}." if choice.kind == "vgg16" else f"From {choice.images_note}."
        st.caption(note)
    return image, true_label


def true_class_sidebar(choice: interpret.ModelChoice, probs: np.ndarray) -> int:
    """An upload has no label: the learner says what it shows (the prediction by default)."""
    names = list(choice.class_names)
    with st.sidebar:
        return names.index(url.selectbox("label", "True class of your image", names, names[int(np.argmax(probs))]))


# ----------------------------------------------------------------------------- tab 1: filter exemplars
def exemplars_tab(choice: interpret.ModelChoice, layers: list[str]) -> tuple[str, interpret.ExemplarSettings]:
    """The layer and exemplar settings (shared with the hypothesis tab), and the exemplar grid."""
    model = choice.model
    in_h, in_w, _ = choice.input_shape
    st.markdown("Start from faint noise and repeatedly nudge every pixel in the direction that raises the "
                "filter's mean activation (a normalised gradient step). Start small and **upscale between "
                "stages** so coarse structure forms first. Exemplars are random without a fixed seed.")
    c1, c2, c3 = st.columns(3)
    layer_ids = list(range(len(layers)))
    clamp("layer", layer_ids, min(1, len(layers) - 1))
    layer_id = url.selectbox("layer", "Convolution layer", layer_ids, min(1, len(layers) - 1), where=c1,
                             format_func=lambda i: f"{layers[i]} ({interpret.filter_count(model, layers[i])} filters)")
    layer = layers[layer_id]
    n_filters = interpret.filter_count(model, layer)
    clamp("n", list(range(1, min(16, n_filters) + 1)), min(4, n_filters))
    n_show = url.slider("n", "First N filters", 1, min(16, n_filters), min(4, n_filters), where=c1) \
        if n_filters > 1 else 1
    steps = url.slider("steps", "Gradient steps (in total)", 2, 200, 30, where=c2)
    step_size = url.select_slider("lr", "Step size", [0.01, 0.02, 0.05, 0.1, 0.2], 0.05, where=c2)
    stages = url.slider("ups", "Upscaling stages", 0, 8, 2, where=c2, help="Each stage enlarges the image by 1.2x.")
    if in_h is None:
        size = url.select_slider("size", "Image size", [64, 96, 128, 160, 224], 128, where=c3)
    else:
        size = in_h
        c3.caption(f"Image size: {in_h}x{in_w} (this model's input size)")
    seed = url.number("seed", "Seed", 0, 0, 99_999, where=c3, step=1)
    top_k = int(url.slider("topk", "Dataset images per filter", 0, 8, 4, where=c3))
    r1, r2, r3, r4 = st.columns(4)
    use_jitter = url.toggle("jitter", "Jitter", True, where=r1, help="Shift the image randomly by a pixel or two "
                            "before each step: patterns must not depend on exact positions.")
    use_scale = url.toggle("scale", "Random scale", False, where=r2, help="Zoom by up to ±5% before each step.")
    use_blur = url.toggle("blur", "Blur", True, where=r3, help="Smooth the image between stages and every few "
                          "steps: removes the high-frequency noise that no real image has.")
    use_tv = url.toggle("tv", "Total variation", False, where=r4, help="Penalise differences between neighbouring "
                        "pixels: another way of asking for smooth images.")
    settings = interpret.ExemplarSettings.from_switches(
        steps=steps, step_size=step_size, size=size, stages=stages, jitter=use_jitter, scale=use_scale, blur=use_blur,
        tv=use_tv, seed=seed)

    filters = list(range(int(n_show)))
    if st.button(f"Generate exemplars for filters 0-{filters[-1]}", key="inside.gen", type="primary"):
        make_exemplars(choice, layer, filters, settings)
    cached = {f: ex for f in filters if (ex := cached_exemplar(choice, layer, f, settings)) is not None}
    if not cached:
        st.info("Press the button to generate the exemplars (the seed is fixed, so they are reproducible; "
                "settings you have generated before show at once).")
        return layer, settings
    rows, titles = interpret.exemplar_grid(choice, layer, cached, top_k,
                                           dataset_activations(choice, layer) if top_k else None)
    st.markdown(f"**{layer}**: each row is one filter's exemplar (with the mean activation it reaches), then "
                f"the {top_k} dataset images ({choice.images_note}) that excite it most, with theirs. "
                "A filter still at 0.00 is silent: no image in reach switches it on.")
    st.plotly_chart(interpret.image_grid_figure(rows, titles), key="inside.fig_grid")
    if len(cached) < len(filters):
        st.caption(f"{len(filters) - len(cached)} filter(s) not generated yet with these settings.")
    st.caption(f"Seed {settings.seed} · {settings.steps} steps · step size {settings.step_size:g} · "
               f"{settings.stages} upscaling stage(s) · regularisers: {settings.regulariser_names()}")
    return layer, settings


# ----------------------------------------------------------------------------- tab 2: the hypothesis test
def hypothesis_tab(choice: interpret.ModelChoice, layer: str, settings: interpret.ExemplarSettings,
                   image: np.ndarray) -> None:
    """The layer's filters ranked on the input image, their feature maps next to their exemplars."""
    n_filters = interpret.filter_count(choice.model, layer)
    st.markdown(f"Feed an image and rank **{layer}**'s filters by their mean activation on it. If a filter's "
                "exemplar looks like part of your image, the hypothesis about what it detects gains support.")
    maps = interpret.feature_maps(choice.model, layer, image, preprocess=choice.preprocess)
    ranking = interpret.rank_filters(maps)
    h1, h2 = st.columns([1, 3])
    h1.plotly_chart(interpret.image_grid_figure([[choice.display(image)]], [["input"]], cell=180),
                    key="inside.fig_input")
    clamp("top", list(range(1, min(8, n_filters) + 1)), min(4, n_filters))
    top_m = int(url.slider("top", "Top filters to show", 1, min(8, n_filters), min(4, n_filters), where=h2)
                if n_filters > 1 else 1)
    h2.plotly_chart(interpret.ranking_figure(ranking, top_m), key="inside.fig_rank")
    top_filters = [int(f) for f in ranking["filter"][:top_m]]
    if st.button("Generate these filters' exemplars", key="inside.gen_top"):
        make_exemplars(choice, layer, top_filters, settings)
    exemplars = [cached_exemplar(choice, layer, f, settings) for f in top_filters]
    st.plotly_chart(interpret.maps_and_exemplars_figure(
        [maps[:, :, f] for f in top_filters], [None if ex is None else choice.display(ex) for ex in exemplars],
        [f"filter {f}" for f in top_filters]), key="inside.fig_maps")
    st.dataframe(ranking.head(top_m), hide_index=True)


# ----------------------------------------------------------------------------- tab 3: saliency and Grad-CAM
def saliency_tab(choice: interpret.ModelChoice, layers: list[str], image: np.ndarray, probs: np.ndarray | None,
                 true_label: int | None) -> str:
    """Which pixels (saliency) and which regions (Grad-CAM) moved the chosen class's score.
    Returns the Grad-CAM layer (the last conv layer when there is no classifier to explain)."""
    if not choice.classifier or probs is None:
        st.info("VGG16 here is the convolutional base only (no classifier): choose an MNIST or cats/dogs model "
                "to explain a prediction.")
        return layers[-1]
    names = list(choice.class_names)
    predicted = int(np.argmax(probs))
    explain = url.selectbox("cls", "Explain the score of class", ["predicted", *names], "predicted")
    class_index = predicted if explain == "predicted" else names.index(explain)
    layer_ids = list(range(len(layers)))
    clamp("cam_layer", layer_ids, len(layers) - 1)
    cam_layer = layers[url.selectbox("cam_layer", "Grad-CAM layer", layer_ids, len(layers) - 1,
                                     format_func=lambda i: layers[i])]
    st.markdown(f"The model says **{names[predicted]}** ({probs[predicted]:.1%})"
                + (f"; the true class is **{names[true_label]}**." if true_label is not None else ".")
                + f" Explaining class **{names[class_index]}**.")
    sal = interpret.saliency_map(choice.model, image, class_index, preprocess=choice.preprocess)
    cam = interpret.grad_cam(choice.model, image, class_index, cam_layer, preprocess=choice.preprocess)
    st.plotly_chart(interpret.heat_overlay_figure(choice.display(image), [sal, cam],
                                                  ["saliency |∂ log p / ∂ pixel|", f"Grad-CAM ({cam_layer})"]),
                    key="inside.fig_heat")
    st.caption("Saliency: how much each pixel's value moves the class's log-probability. Grad-CAM: "
               "feature maps of the chosen layer weighted by their mean gradient, positive part, upsampled: "
               "coarser (the last conv layer is a few pixels wide) but about regions rather than specks.")
    return cam_layer


# ----------------------------------------------------------------------------- tab 4: the one-pixel attack
def attack_settings(names: list[str], true_label: int | None) -> adversarial.AttackSettings:
    """Pixels, population, generations, seed and an optional target: in the link, shared by both attacks."""
    a1, a2, a3 = st.columns(3)
    n_pixels = url.slider("px", "Pixels to change", 1, 5, 1, where=a1)
    popsize = url.select_slider("pop", "Population per generation", [10, 20, 50, 100, 200, 400], 100, where=a2)
    maxiter = url.slider("gens", "Generations at most", 1, 100, 20, where=a2)
    attack_seed = url.number("aseed", "Attack seed", 0, 0, 99_999, where=a1, step=1)
    target = None
    if url.toggle("targeted", "Targeted", False, where=a3):
        others = [n for i, n in enumerate(names) if i != true_label]
        target = names.index(url.selectbox("target", "Target class", names, others[0], where=a3))
    return adversarial.AttackSettings(int(n_pixels), int(popsize), int(maxiter), int(attack_seed), target)


def run_single_attack(choice: interpret.ModelChoice, image: np.ndarray, true_label: int,
                      settings: adversarial.AttackSettings) -> adversarial.AttackResult:
    """One attack on the input image, with a progress bar and the live true-class curve."""
    bar = st.progress(0.0, text="Generation 0")
    curve_slot = st.empty()
    last_drawn = [0.0]
    curve_so_far: list[float] = []

    def on_generation(gen: int, conf: float, queries: int) -> None:
        bar.progress(min(gen / settings.maxiter, 1.0),
                     text=f"Generation {gen}/{settings.maxiter} · p(true) = {conf:.3f} · {queries:,} queries")
        now = time.monotonic()
        if now - last_drawn[0] > 0.3:
            last_drawn[0] = now
            curve_slot.line_chart({"p(true class)": curve_so_far + [conf]}, height=180)
        curve_so_far.append(conf)

    res = adversarial.one_pixel_attack(choice.model, image, true_label, settings.pixels, maxiter=settings.maxiter,
                                       popsize=settings.popsize, seed=settings.seed, targeted=settings.target,
                                       callback=on_generation, value_range=choice.value_range,
                                       preprocess=choice.preprocess)
    bar.empty()
    curve_slot.empty()
    return res


def show_attack(res: adversarial.AttackResult, original: np.ndarray, choice: interpret.ModelChoice) -> None:
    names = list(choice.class_names)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Result", "fooled" if res.success else "not fooled")
    m2.metric("Model queries", f"{res.queries:,}")
    m3.metric("Generations", res.generations)
    m4.metric("Seconds", f"{res.seconds:.1f}")
    st.markdown(res.message)
    before, after = res.prediction_before, res.prediction_after
    st.plotly_chart(adversarial.attack_figure(
        original, res.image, res.pixels,
        [f"original: {names[before]} ({res.before[before]:.1%})", f"attacked: {names[after]} ({res.after[after]:.1%})"],
        value_range=choice.value_range), key="inside.fig_attack")
    p1, p2 = st.columns(2)
    p1.plotly_chart(adversarial.probabilities_figure(res.before, res.after, names), key="inside.fig_probs")
    p2.plotly_chart(adversarial.confidence_figure(
        res.confidence_curve, names[res.label], res.target_curve,
        names[res.target] if res.target is not None else "", res.maxiter), key="inside.fig_curve")
    if res.pixels:
        st.dataframe(res.pixel_rows(), hide_index=True)


def batch_attack(choice: interpret.ModelChoice, model_key: str, settings: adversarial.AttackSettings) -> None:
    """The same attack over the first N dataset images, as a job in the training queue."""
    names = list(choice.class_names)
    st.subheader("Batch: success rate over dataset images")
    if choice.images is None or choice.labels is None:
        st.caption("No labelled dataset images for this model.")
        return
    n_batch = int(url.slider("batch_n", "Images (from the first)", 1, min(50, len(choice.labels)),
                             min(10, len(choice.labels))))
    st.caption(f"Same settings as above; at most {n_batch * settings.query_budget:,} queries in all. Images the "
               "model already gets wrong are skipped, as in the paper.")
    batch_spec = runs.RunSpec("inside", {
        "part": "batch", "model": model_identity(model_key), "pixels": settings.pixels, "pop": settings.popsize,
        "gens": settings.maxiter, "target": -1 if settings.target is None else settings.target, "n": n_batch,
        "seed": settings.seed}, version=1, secret=private_model_secret(model_key))
    task = adversarial.batch_task(choice.model, choice.images[:n_batch], choice.labels[:n_batch], settings,
                                  value_range=choice.value_range, preprocess=choice.preprocess)
    batch = live.run_panel(
        "inside.batch", batch_spec, lambda: [ModelRun("One-pixel attack", None, {}, task=task, unit="image")],
        budget=Budget.from_env(), seed=settings.seed, metrics=(), start_label="Run the batch",
        label=f"{n_batch} images · {settings.pixels} px · population {settings.popsize} · "
              f"{settings.maxiter} generations")
    result = batch.snapshot().models["One-pixel attack"].results if batch is not None and batch.done else {}
    if not result.get("summary"):
        return
    s = result["summary"]
    b1, b2, b3 = st.columns(3)
    b1.metric("Success rate", "n/a" if s["attacked"] == 0 else f"{s['success_rate']:.0%}",
              help=f"{s['successes']} of {s['attacked']} attacked images; {s['skipped']} skipped")
    b2.metric("Mean queries per image", f"{s['mean_queries']:,.0f}" if s["attacked"] else "n/a")
    b3.metric("Seconds", f"{s['seconds']:.1f}")
    st.caption(f"{settings.pixels} pixel(s), population {settings.popsize}, up to {settings.maxiter} generations"
               + (f", target {names[settings.target]}" if settings.target is not None else "") + ". A batch trains "
               "nothing but takes a training slot: it waits in the same queue and has the same time budget.")
    st.dataframe(pd.DataFrame(result["rows"]), hide_index=True, key="inside.batch_table")


def attack_tab(choice: interpret.ModelChoice, model_key: str, image: np.ndarray,
               true_label: int | None) -> adversarial.AttackSettings | None:
    """The one-pixel attack on the input image, then the same attack over a batch of dataset images.
    Returns the attack's settings (None when the model has no classifier to attack)."""
    st.info(adversarial.HONEST_NOTE)
    if not choice.classifier or true_label is None:
        st.warning("Choose an MNIST or cats/dogs model to attack (the VGG16 base has no classifier here).")
        return None
    settings = attack_settings(list(choice.class_names), true_label)
    st.caption(f"Budget: up to **{settings.query_budget:,} model queries** ({settings.popsize} candidates × "
               f"{settings.maxiter} generations + the initial population). The paper: 400 × 100.")
    if st.button("Run the attack", key="inside.attack_go", type="primary"):
        if settings.target is not None and settings.target == true_label:
            st.error("The target must differ from the true class.")
        else:
            res = run_single_attack(choice, image, true_label, settings)
            st.session_state[ATTACK] = {"result": res, "original": np.array(image), "model": choice.key}
    shown = st.session_state.get(ATTACK)
    if shown is not None and shown["model"] == choice.key and np.array_equal(shown["original"], image):
        show_attack(shown["result"], shown["original"], choice)
    batch_attack(choice, model_key, settings)
    return settings


# ----------------------------------------------------------------------------- tab 5: the code
def code_tab(choice: interpret.ModelChoice, layer: str, cam_layer: str,
             attack: adversarial.AttackSettings | None) -> None:
    """The code behind the tabs, with the layers and the attack budget chosen there (the code is
    written for an MNIST CNN: other models keep its example layer names)."""
    st.markdown("A filter exemplar and Grad-CAM in plain Keras and TensorFlow:")
    st.code(keras_code.inside_code(layer, cam_layer) if choice.kind == "mnist" else keras_code.inside_code(),
            language="python")
    st.markdown("The one-pixel attack with SciPy's differential evolution, one batched prediction per generation:")
    attack = attack or adversarial.AttackSettings()
    st.code(keras_code.one_pixel_attack_code(attack.pixels, attack.popsize, attack.maxiter, attack.seed),
            language="python")


# ----------------------------------------------------------------------------- the page
st.title("Inside the network")
st.markdown("What does a filter look for? Generate the image that excites it most (gradient ascent on the "
            "**input**, after Fabio Graetz's *How to Visualize Convolutional Features in 40 Lines of Code*), "
            "then test the hypothesis on real images. Finally, see how a single pixel can change the answer "
            "(Su, Vargas and Sakurai, 2017).")
url.share_note()

model_key, choice, photo_names = model_sidebar()
if choice.kind == "mnist":
    data_banner(mnist_test(str(data.data_dir()))[2])
layers = interpret.conv_layers(choice.model)
if not layers:
    st.error("This model has no convolution layer: nothing to look inside. Choose another model.")
    st.stop()
image, true_label = image_sidebar(choice, photo_names)
probs = interpret.predict_probs(choice.model, image, preprocess=choice.preprocess)[0] if choice.classifier else None
if probs is not None and true_label is None:
    true_label = true_class_sidebar(choice, probs)

tab_ex, tab_hyp, tab_sal, tab_attack, tab_code = st.tabs(
    ["Filter exemplars", "Test the hypothesis", "Saliency & Grad-CAM", "One-pixel attack", "Keras code"])
with tab_ex:
    layer, exemplar_settings = exemplars_tab(choice, layers)
with tab_hyp:
    hypothesis_tab(choice, layer, exemplar_settings, image)
with tab_sal:
    cam_layer = saliency_tab(choice, layers, image, probs, true_label)
with tab_attack:
    attack = attack_tab(choice, model_key, image, true_label)
with tab_code:
    code_tab(choice, layer, cam_layer, attack)


exercises.try_this("inside", url)
url.sync()
