"""Inside the network (course Video 5, learning outcome 4): filter exemplars, the hypothesis test,
saliency and Grad-CAM, and the one-pixel attack, on the course's CNN, the learner's own runs or a
.keras file they upload. All computation lives in dnn2core.

Reads top to bottom: cached loaders, session caches, the model and image pickers, one function per
tab (each takes what it needs as arguments, and computes only while its tab is open), then the page
itself at the bottom, calling them in order.

Why it is fast after the first load (issue 14; profiled with py-spy on a real server): the tabs
rerun on a switch and only the open one computes; results (probabilities, feature maps, saliency
and Grad-CAM, exemplar grids) are kept per model, layer and image in this session, so a widget
change recomputes only what it changed; and the figures are built in one go, not with
make_subplots, whose per-tile axis updates cost 2.4 s for a 16 x 9 exemplar grid."""

import time
from typing import Any, Callable

import numpy as np
import pandas as pd
import streamlit as st

from dnn2core import adversarial, data, experiments, interpret, keras_code, pretrained, runs, uploads
from dnn2core.training import Budget, ModelRun
from dnn2ui import bases as shared_bases
from dnn2ui import exercises, live
from dnn2ui.sidebar import data_banner
from dnn2ui.state import UrlState, as_code

url = UrlState("inside")

EXEMPLAR_CACHE = "inside.exemplar_cache"
ACTIVATION_CACHE = "inside.activation_cache"
MEMO = "inside.memo"
ATTACK = "inside.attack_result"
OWN_MODEL = "inside.own_model"  # the learner's uploaded model: one per session
OWN_MODEL_ERROR = "inside.own_model_error"  # (file id, message) of the upload that was refused
OWN_MODEL_DISMISSED = "inside.own_model_dismissed"  # the file id the learner asked to forget
MAX_CACHED = 256
MEMO_PER_KIND = 8
MEMO_BIG = 3  # VGG16's block-1 feature maps are 12.8 MB, a 16 x 9 grid of its exemplars 8 MB
MAX_MODEL_MB = uploads.MAX_MODEL_BYTES // (1024 * 1024)
MNIST_NAMES = tuple(str(d) for d in range(10))
TABS = ("Filter exemplars", "Test the hypothesis", "Saliency & Grad-CAM", "One-pixel attack", "Keras code")


# ----------------------------------------------------------------------------- cached loaders
@st.cache_resource(max_entries=2, show_spinner=False)
def _stored_default_cnn(key: str, recipe: interpret.DefaultCnnRecipe) -> interpret.DefaultCnn:
    """The stored default CNN, loaded once per process and shared read-only by every session."""
    run = live.view(key)
    name = interpret.DEFAULT_CNN_RUN
    return interpret.default_cnn_from(run.models[name], run.snapshot().models[name].results, run.record.extra, recipe)


def default_cnn() -> interpret.DefaultCnn | None:
    """The small CNN trained for this server (by a worker, once, kept in the run store); None with the
    reason on the page when it cannot be trained now."""
    recipe = interpret.default_cnn_recipe(0)
    spec = runs.RunSpec("inside", {"part": "default_cnn", "train": recipe.train_size, "epochs": recipe.epochs,
                                   "seed": recipe.seed}, data=str(data.data_dir()), version=1)
    with st.spinner("Training a small CNN on MNIST digits (first use on this server, about 10 s in the training "
                    "queue)…"):
        run = live.shared_run(spec, lambda: recipe, budget=Budget.from_env(), label="The small MNIST CNN")
    return _stored_default_cnn(run.key, recipe) if run is not None else None


@st.cache_resource(max_entries=2, show_spinner=False)
def mnist_test(where: str, limit: int = 1000):
    """Shared read-only (a resource, not data: no copy of 3 MB per rerun and session)."""
    loaded = experiments.mnist_here(where)[0]
    x = loaded.data.x_test[:limit].astype(np.float32)[..., None] / 255.0
    y = loaded.data.y_test[:limit].astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y, loaded.provenance


@st.cache_resource(max_entries=1, show_spinner=False)
def sample_photos() -> tuple[np.ndarray, tuple[str, ...]]:
    """The built-in colour photos at 224x224 in [0, 1]: VGG16's images, and an uploaded colour model's."""
    names = [n for n in data.sample_image_names() if "MNIST" not in n]
    photos = np.stack([interpret.fit_image(data.load_sample_image(n).data, (224, 224, 3)) for n in names])
    photos.flags.writeable = False
    return photos, tuple(names)


# ----------------------------------------------------------------------------- small helpers
def model_choices(own: interpret.ModelChoice | None) -> tuple[dict[str, interpret.ModelChoice], dict]:
    """Every model the learner can look inside, and how to load each (only the chosen one is loaded).
    ``own``: the model this learner uploaded in this session, if any."""
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
    if own is not None:
        choices[own.key] = own
        loaders[own.key] = lambda: own.model
    choices["default"] = interpret.ModelChoice(
        "default", "Small CNN trained here (MNIST)", None, "mnist", class_names=MNIST_NAMES,
        images=x_test, labels=y_test, images_note=f"{len(y_test):,} MNIST test digits")
    return choices, loaders


def model_identity(key: str) -> str:
    """What makes a chosen model itself, for run keys: the default CNN's training settings, or the
    run (reference or the learner's) that trained it, or an uploaded file's fingerprint."""
    if key == "default":
        recipe = interpret.default_cnn_recipe(0)
        return f"default:{recipe.train_size}:{recipe.epochs}:{data.data_dir().name}"
    if key == "reference":
        ref = live.reference_run("mnist")
        return f"reference:{ref.key if ref else ''}"
    return key


def private_model_secret(key: str) -> str:
    """A learner's own model is theirs: attacks on it stay in their link (their cats/dogs images,
    their uploaded file)."""
    return live.private_secret() if key.startswith(("mnist:", "catsdogs:", "upload:")) else ""


def clamp(name: str, options: list, default) -> None:
    """Keep a remembered choice across a change of the widget's options, and drop one the current
    model does not offer (e.g. layer 4 of 3). Written back even when valid: Streamlit resets a widget
    whose options or bounds changed (another model: 6 filters instead of 64) to its first value,
    unless the script sets its value before drawing it."""
    key = url.key(name)
    if key in st.session_state:
        st.session_state[key] = st.session_state[key] if st.session_state[key] in options else default


def remember(cache_name: str, key, value) -> None:
    """Keep a result in this session, the oldest dropped beyond MAX_CACHED."""
    cache = st.session_state.setdefault(cache_name, {})
    cache[key] = value
    while len(cache) > MAX_CACHED:
        cache.pop(next(iter(cache)))


def memo(kind: str, key: tuple, compute: Callable[[], Any], keep: int = MEMO_PER_KIND) -> Any:
    """A result kept in this session, the newest ``keep`` of each kind: a rerun whose inputs did not
    change (another tab's widget, a switch back to this tab) reuses it instead of recomputing it.
    ``key`` must hold everything the result depends on."""
    store = st.session_state.setdefault(MEMO, {}).setdefault(kind, {})
    if key in store:
        store[key] = store.pop(key)  # now the newest
        return store[key]
    value = compute()
    store[key] = value
    while len(store) > keep:
        store.pop(next(iter(store)))
    return value


def model_id(choice: interpret.ModelChoice) -> tuple:
    """The chosen model itself, for cache keys: its option and the loaded object (a retrained or
    re-uploaded model is another object)."""
    return choice.key, id(choice.model)


def exemplar_key(choice: interpret.ModelChoice, layer: str, filter_index: int,
                 settings: interpret.ExemplarSettings) -> tuple:
    return (*model_id(choice), layer, int(filter_index), settings)


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
    key = (*model_id(choice), layer)
    cache = st.session_state.setdefault(ACTIVATION_CACHE, {})
    if key not in cache:
        remember(ACTIVATION_CACHE, key, interpret.filter_activations(choice.model, layer, choice.images,
                                                                     preprocess=choice.preprocess))
    return cache[key]


# ----------------------------------------------------------------------------- sidebar: the model and the image
def forget_own_model() -> None:
    """The "Forget my model" button: the model leaves this session (and the file in the uploader is
    not loaded again)."""
    own = st.session_state.pop(OWN_MODEL, None)
    if own is not None:
        st.session_state[OWN_MODEL_DISMISSED] = own["file_id"]


def own_model_uploader(digits: tuple[np.ndarray, np.ndarray]) -> interpret.ModelChoice | None:
    """A .keras file of the learner's own: size-checked before it is read, checked as a zip, loaded
    in Keras' safe mode from a private temporary file, then checked for what the page needs (an
    image input, a Conv2D layer, class scores). Kept in this session only, one at a time (a new
    upload replaces it); a refused file gets its reason and the page carries on with the others."""
    upload = st.file_uploader(f"Or look inside your own model (.keras, up to {MAX_MODEL_MB} MB)", type=["keras"],
                              key="inside.model_upload", max_upload_size=MAX_MODEL_MB,
                              help="A Keras 3 model saved with model.save('name.keras'): one image input "
                                   "(height, width, 1 or 3 channels), at least one Conv2D layer, and class "
                                   "probabilities or logits out. Lambda layers and custom code are refused.")
    own = st.session_state.get(OWN_MODEL)
    fresh = upload is not None and (own is None or own["file_id"] != upload.file_id) \
        and st.session_state.get(OWN_MODEL_DISMISSED) != upload.file_id
    failed = st.session_state.get(OWN_MODEL_ERROR)
    if fresh and failed is not None and failed[0] == upload.file_id:
        st.error(failed[1])
        fresh = False
    if fresh:
        try:
            if upload.size > uploads.MAX_MODEL_BYTES:  # the size Streamlit received, before reading it
                raise uploads.UploadError(f"The file is larger than {MAX_MODEL_MB} MB; please upload a smaller "
                                          "model.")
            with st.spinner("Checking and loading your model…"):
                loaded = uploads.load_keras_model(upload)
                check = interpret.check_image_classifier(loaded.model)
                photos = sample_photos()[0] if check.input_shape[2] == 3 else None
                choice = interpret.uploaded_model_choice(
                    loaded.model, f"upload:{loaded.digest[:8]}", f"Your model: {upload.name[:40]}", check,
                    digits=digits, photos=photos)
        except (uploads.UploadError, ValueError) as exc:
            st.session_state[OWN_MODEL_ERROR] = (upload.file_id, f"{upload.name[:60]}: {exc}")
            st.error(f"{upload.name[:60]}: {exc}")
        else:
            st.session_state[OWN_MODEL] = {"file_id": upload.file_id, "name": upload.name[:60], "choice": choice,
                                           "check": check}
            st.session_state.pop(OWN_MODEL_ERROR, None)
            st.session_state[url.key("model")] = choice.key  # show it at once
            own = st.session_state[OWN_MODEL]
    if own is None:
        return None
    st.caption(f"Your model {as_code(own['name'], 40)}: {own['check'].summary()}. Kept for this session only; "
               f"images: {own['choice'].images_note}.")
    st.button("Forget my model", key="inside.forget_model", on_click=forget_own_model)
    return own["choice"]


def model_sidebar() -> tuple[str, interpret.ModelChoice, tuple[str, ...]]:
    """The model to look inside (loaded), its option key, and VGG16's sample photo names."""
    with st.sidebar:
        st.markdown("**Model to look inside**")
        picker = st.container()
        x_test, y_test, _ = mnist_test(str(data.data_dir()))
        own = own_model_uploader((x_test, y_test))
        choices, loaders = model_choices(own)
        photo_names: tuple[str, ...] = ()
        vgg_path, _, vgg_reason = pretrained.find_weights("vgg16")  # never downloads here: 58 MB by surprise
        if vgg_path is not None:
            photos, photo_names = sample_photos()
            choices["vgg16"] = interpret.ModelChoice(
                "vgg16", "VGG16 (ImageNet)", None, "vgg16", preprocess=interpret.vgg16_preprocess, images=photos,
                images_note=f"the {len(photo_names)} built-in sample photos (ImageNet is not on this server)")
        keys = list(choices)
        first = "reference" if "reference" in choices else "default"  # the course's CNN needs no training here
        clamp("model", keys, first)
        with picker:
            model_key = url.selectbox("model", "Model", keys, first, format_func=lambda k: choices[k].label)
            if vgg_path is None:
                st.toggle("VGG16 (ImageNet)", value=False, disabled=True, key="inside.vgg_unavailable",
                          help=vgg_reason)
                st.caption(f"VGG16 is unavailable: {vgg_reason}")
            else:
                st.caption(vgg_reason)
            choice = choices[model_key]
            if choice.kind == "vgg16":
                choice.model = shared_bases.imagenet_base("vgg16")[0]  # the same shared base as the cats/dogs page
            elif model_key == "default":
                cnn = default_cnn()  # trained by a worker on first use, then read from the run store
                if cnn is None:
                    st.info("Choose another model meanwhile: the course's CNN needs no training here.")
                    st.stop()
                choice.model = cnn.model
                st.caption(cnn.description)
            else:
                choice.model = loaders[model_key]()
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
                    image, note = choice.prepare_upload(uploads.image_array(upload.getvalue(), max_side=512))
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
    predicted = names[int(np.argmax(probs))]
    clamp("label", names, predicted)  # another model's class names (a digit, "cat", "class 2")
    with st.sidebar:
        return names.index(url.selectbox("label", "True class of your image", names, predicted))


# ----------------------------------------------------------------------------- tab 1: filter exemplars
def exemplars_tab(choice: interpret.ModelChoice, layers: list[str],
                  show: bool) -> tuple[str, interpret.ExemplarSettings]:
    """The layer and exemplar settings (shared with the hypothesis tab), and, while the tab is open
    (``show``), the exemplar grid."""
    model = choice.model
    in_h, in_w, _ = choice.input_shape
    st.markdown("Start from faint noise and repeatedly nudge every pixel in the direction that raises the "
                "filter's mean activation (a normalised gradient step). Start small and **upscale between "
                "stages** so coarse structure forms first. The noise (and the random jitter and zoom) is drawn "
                "from the **Seed**: the same seed and settings give the same exemplar, another seed starts "
                "from other noise and may find another pattern.")
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
    seed = url.number("seed", "Seed", 0, 0, 99_999, where=c3, step=1,
                      help="Draws the starting noise and the random jitter and zoom of every step.")
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
    if not show:
        return layer, settings
    cached = {f: ex for f in filters if (ex := cached_exemplar(choice, layer, f, settings)) is not None}
    if not cached:
        st.info(f"Press the button to generate the exemplars. They are reproducible: seed {settings.seed} with "
                "these settings always gives the same ones, and settings you have generated before show at once.")
        return layer, settings
    grid = memo("grid", (*model_id(choice), layer, tuple(cached), settings, top_k), lambda: interpret.image_grid_figure(
        *interpret.exemplar_grid(choice, layer, cached, top_k, dataset_activations(choice, layer) if top_k else None)),
        keep=MEMO_BIG)
    st.markdown(f"**{layer}**: each row is one filter's exemplar (with the mean activation it reaches), then "
                f"the {top_k} dataset images ({choice.images_note}) that excite it most, with theirs. "
                "A filter still at 0.00 is silent: no image in reach switches it on.")
    st.plotly_chart(grid, key="inside.fig_grid")
    if len(cached) < len(filters):
        st.caption(f"{len(filters) - len(cached)} filter(s) not generated yet with these settings.")
    st.caption(f"Seed {settings.seed} · {settings.steps} steps · step size {settings.step_size:g} · "
               f"{settings.stages} upscaling stage(s) · regularisers: {settings.regulariser_names()}")
    return layer, settings


# ----------------------------------------------------------------------------- tab 2: the hypothesis test
def hypothesis_tab(choice: interpret.ModelChoice, layer: str, settings: interpret.ExemplarSettings,
                   image: np.ndarray, image_id: str, show: bool) -> None:
    """The layer's filters ranked on the input image, their feature maps next to their exemplars
    (computed only while the tab is open, once per model, layer and image)."""
    n_filters = interpret.filter_count(choice.model, layer)
    st.markdown(f"Feed an image and rank **{layer}**'s filters by their mean activation on it. If a filter's "
                "exemplar looks like part of your image, the hypothesis about what it detects gains support.")
    h1, h2 = st.columns([1, 3])
    clamp("top", list(range(1, min(8, n_filters) + 1)), min(4, n_filters))
    top_m = int(url.slider("top", "Top filters to show", 1, min(8, n_filters), min(4, n_filters), where=h2)
                if n_filters > 1 else 1)
    if not show:
        return
    maps = memo("maps", (*model_id(choice), layer, image_id),
                lambda: interpret.feature_maps(choice.model, layer, image, preprocess=choice.preprocess), keep=MEMO_BIG)
    ranking = interpret.rank_filters(maps)
    h1.plotly_chart(interpret.image_grid_figure([[choice.display(image)]], [["input"]], cell=180),
                    key="inside.fig_input")
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
def saliency_tab(choice: interpret.ModelChoice, layers: list[str], image: np.ndarray, image_id: str,
                 probs: np.ndarray | None, true_label: int | None, show: bool) -> str:
    """Which pixels (saliency) and which regions (Grad-CAM) moved the chosen class's score.
    Returns the Grad-CAM layer (the last conv layer when there is no classifier to explain)."""
    if not choice.classifier or probs is None:
        st.info("VGG16 here is the convolutional base only (no classifier): choose an MNIST or cats/dogs model "
                "to explain a prediction.")
        return layers[-1]
    names = list(choice.class_names)
    predicted = int(np.argmax(probs))
    clamp("cls", ["predicted", *names], "predicted")
    explain = url.selectbox("cls", "Explain the score of class", ["predicted", *names], "predicted")
    class_index = predicted if explain == "predicted" else names.index(explain)
    layer_ids = list(range(len(layers)))
    clamp("cam_layer", layer_ids, len(layers) - 1)
    cam_layer = layers[url.selectbox("cam_layer", "Grad-CAM layer", layer_ids, len(layers) - 1,
                                     format_func=lambda i: layers[i])]
    if not show:
        return cam_layer
    st.markdown(f"The model says **{names[predicted]}** ({probs[predicted]:.1%})"
                + (f"; the true class is **{names[true_label]}**." if true_label is not None else ".")
                + f" Explaining class **{names[class_index]}**.")
    sal, cam = memo("heat", (*model_id(choice), image_id, class_index, cam_layer), lambda: (
        interpret.saliency_map(choice.model, image, class_index, preprocess=choice.preprocess),
        interpret.grad_cam(choice.model, image, class_index, cam_layer, preprocess=choice.preprocess)))
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
        clamp("target", names, others[0])
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


def attack_tab(choice: interpret.ModelChoice, model_key: str, image: np.ndarray, true_label: int | None,
               show: bool) -> adversarial.AttackSettings | None:
    """The one-pixel attack on the input image, then the same attack over a batch of dataset images
    (results and the batch panel only while the tab is open). Returns the attack's settings (None
    when the model has no classifier to attack)."""
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
            st.session_state[ATTACK] = {"result": res, "original": np.array(image), "model": model_id(choice)}
    if not show:
        return settings
    shown = st.session_state.get(ATTACK)
    if shown is not None and shown["model"] == model_id(choice) and np.array_equal(shown["original"], image):
        show_attack(shown["result"], shown["original"], choice)
    batch_attack(choice, model_key, settings)
    return settings


# ----------------------------------------------------------------------------- tab 5: the code
def code_tab(choice: interpret.ModelChoice, layer: str, cam_layer: str,
             attack: adversarial.AttackSettings | None) -> None:
    """The code behind the tabs, with the layers and the attack budget chosen there (the code is
    written for an MNIST CNN: other models keep its example layer names)."""
    st.markdown("A filter exemplar and Grad-CAM in plain Keras and TensorFlow:")
    st.code(keras_code.inside_code(layer, cam_layer) if choice.digit_input else keras_code.inside_code(),
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
if choice.digit_input and choice.images is not None:
    data_banner(mnist_test(str(data.data_dir()))[2])
layers = interpret.conv_layers(choice.model)
if not layers:
    st.error("This model has no convolution layer: nothing to look inside. Choose another model.")
    st.stop()
image, true_label = image_sidebar(choice, photo_names)
image_id = interpret.array_digest(image)
probs = memo("probs", (*model_id(choice), image_id), lambda: interpret.predict_probs(
    choice.model, image, preprocess=choice.preprocess)[0]) if choice.classifier else None
if probs is not None and true_label is None:
    true_label = true_class_sidebar(choice, probs)

# Only the open tab computes: a switch reruns the page (its widgets still draw in every tab, so their
# settings stay in the link and reach the tabs that use them).
tab_ex, tab_hyp, tab_sal, tab_attack, tab_code = st.tabs(list(TABS), key="inside.tab", on_change="rerun")
with tab_ex:
    layer, exemplar_settings = exemplars_tab(choice, layers, bool(tab_ex.open))
with tab_hyp:
    hypothesis_tab(choice, layer, exemplar_settings, image, image_id, bool(tab_hyp.open))
with tab_sal:
    cam_layer = saliency_tab(choice, layers, image, image_id, probs, true_label, bool(tab_sal.open))
with tab_attack:
    attack = attack_tab(choice, model_key, image, true_label, bool(tab_attack.open))
with tab_code:
    if tab_code.open:
        code_tab(choice, layer, cam_layer, attack)


exercises.try_this("inside", url)
url.sync()
