"""Cats vs dogs: from scratch, on a frozen pretrained VGG16, then fine-tuned (Videos 3-4, outcomes 1-3)."""

import hashlib
import os

import streamlit as st

from dnn2core import catsdogs as cd
from dnn2core import data, device, keras_code, models, pretrained, runs, uploads
from dnn2core.training import Budget
from dnn2ui import bases as shared_bases
from dnn2ui import exercises, live, present, uploads_ui
from dnn2ui.sidebar import data_banner
from dnn2ui.state import UrlState

PAGE = "cats_dogs"
url = UrlState(PAGE)
st.title("Cats vs dogs & VGG16")
st.markdown("One binary task solved three ways, side by side: the course's small network **from scratch** "
            "(about 70% on 2,000 training images), a **frozen pretrained VGG16** base with one sigmoid neuron on top "
            "(about 97%), and the same model **fine-tuned** (about 97.5%). Train them here on real photos.")
url.share_note()

ON_GPU = device.configure_tensorflow().kind == "GPU"  # 224 px by default on a GPU, 150 px on a CPU
REFERENCES = {"course: from scratch ~70%": 0.70, "course: frozen VGG16 ~97%": 0.97}
VERSION = 1


# ----------------------------------------------------------------------------- cached, shared resources
@st.cache_data(ttl=30, show_spinner=False)
def local_folder(data_dir: str, keras_dir: str):
    return cd.find_local_folder()


@st.cache_data(ttl=30, show_spinner=False)
def scanned(path: str, name: str):
    return cd.scan_layout(path, name=name)


@st.cache_resource(max_entries=4, show_spinner="Building the models for their summaries…")
def summaries(size: int, deeper: bool):
    scratch = cd.build_catsdogs_scratch((size, size, 3), deeper=deeper)
    transfer = cd.build_vgg16_transfer(weights=None, input_shape=(size, size, 3))
    frozen = (models.summary_frame(transfer), models.param_totals(transfer))
    cd.unfreeze_top(transfer, 4)
    base = cd.base_of(transfer)
    tuned = (models.summary_frame(base), models.param_totals(base), models.param_totals(transfer))
    return (models.summary_frame(scratch), models.param_totals(scratch)), frozen, tuned


@st.cache_resource(max_entries=1, show_spinner="Building VGG16 with its top (138 million parameters)…")
def vgg16_with_top():
    full = pretrained.build_base("vgg16", None, include_top=True, input_shape=(224, 224, 3))
    return models.summary_frame(full), models.param_totals(full)


# ----------------------------------------------------------------------------- images
SOURCES = ["Server folder", "Folder path", "Upload a zip", "Download"]
folder, source_name = None, ""
with present.settings("Images"):
    source = url.radio("src", "Where the images come from", SOURCES, "Server folder", horizontal=True)
    if source == "Server folder":
        folder = local_folder(str(data.data_dir()), str(data.keras_cache_dir()))
        source_name = "DNN2_DATA_DIR" if folder and str(data.data_dir()) in folder.root else "Keras cache"
        if folder is None:
            st.caption("Searched the server's data folder (DNN2_DATA_DIR, and its cats_and_dogs/ and "
                       "cats_and_dogs_filtered/ folders) and the Keras cache.")
    elif source == "Folder path":
        typed = st.text_input("Folder on the server (inside its data folder or the Keras cache)", key=f"{PAGE}.path",
                              placeholder="cats_and_dogs_filtered, or a folder of cat.N.jpg / dog.N.jpg")
        if typed.strip():
            try:
                path, name = uploads.resolve_server_path(typed, uploads_ui.roots(), want="folder")
                folder, source_name = scanned(str(path), name), "folder"
            except ValueError as exc:  # UploadError too
                st.error(str(exc))
    elif source == "Upload a zip":
        up = st.file_uploader(f"A zip of images (at most {cd.MAX_ZIP_BYTES // (1024 * 1024)} MB)", type=["zip"],
                              key=f"{PAGE}.zip")
        if up is not None:
            raw = up.getvalue()
            digest = hashlib.sha256(raw).hexdigest()[:16]  # a different zip never reuses the last one's images
            done = st.session_state.get(f"{PAGE}.zip_done")
            if done and done[0] == digest and os.path.isdir(done[1].root):
                folder = done[1]
            else:
                space = uploads_ui.session_folder()
                space.clear()  # one uploaded set per session: the previous one is removed first
                try:
                    folder = cd.folder_from_zip(raw, space.path / f"zip-{digest}",
                                                quota_left=uploads.quota_left(space.path))
                    st.session_state[f"{PAGE}.zip_done"] = (digest, folder)
                except ValueError as exc:  # UploadError too; the failed extraction is already removed
                    st.session_state.pop(f"{PAGE}.zip_done", None)
                    st.error(f"{up.name}: {exc}")
            source_name = "upload"
    else:
        cached = data.keras_cache_dir() / "cats_and_dogs_filtered"
        if cached.is_dir():
            try:
                folder, source_name = scanned(str(cached), "the downloaded copy"), "Keras cache"
            except ValueError as exc:
                st.error(f"The downloaded copy in the Keras cache is damaged ({exc}); ask the administrator to "
                         "delete it, then download again.")
        elif st.button(f"Download cats_and_dogs_filtered.zip ({cd.FILTERED_MB} MB)", key=f"{PAGE}.download"):
            with st.spinner("Downloading and unpacking (once for the whole server)…"):
                folder = cd.download_filtered()
            if folder is None:
                st.error("The download did not work: " + ("downloads are switched off on this server (DNN2_OFFLINE)."
                         if data.offline() else "this server seems to have no internet access.")
                         + " Use a folder or a zip instead.")
            else:
                source_name = "download"
                local_folder.clear()

if folder is None:
    st.warning("**No cats/dogs images yet.** This page trains on real photos only; here is how to get some:")
    for title, cost in cd.how_to_get_images():
        st.markdown(f"- **{title}** — {cost}")
else:
    provenance = cd.provenance_for(folder, source_name)
    data_banner(provenance)
    st.caption(f"📁 {provenance.detail}.")

# ----------------------------------------------------------------------------- settings
full_train = len(folder.train) if folder else cd.SUBSET_TRAIN
full_val = len(folder.validation) if folder else 1000
with present.settings("Training settings"):
    c1, c2, c3 = st.columns([2, 1, 1])  # the approaches get a wide column: their names must not be cut off
    approaches = url.multiselect("models", "Approaches", list(cd.APPROACHES), ["From scratch", "VGG16 frozen"],
                                 where=c1)
    seed = url.number("seed", "Seed", 0, 0, 1_000_000, where=c1, step=1)
    size = url.select_slider("size", "Image size (pixels)", list(cd.IMAGE_SIZES), 224 if ON_GPU else 150, where=c2,
                             help="224 as in the course; smaller is much faster on a CPU.")
    sizes = [n for n in (100, 200, 500, 1000, cd.SUBSET_TRAIN) if n < full_train] + [full_train]
    n_train = url.select_slider("n", "Training images", sizes, min(cd.SUBSET_TRAIN, full_train), where=c2,
                                format_func=lambda v: f"{v:,}" + (" (full set)" if v == full_train and
                                                                   v > cd.SUBSET_TRAIN else ""))
    vsizes = [n for n in (100, 200, 500) if n < full_val] + [full_val]
    n_val = url.select_slider("nval", "Validation images", vsizes, min(500, full_val), where=c2,
                              format_func=lambda v: f"{v:,}")
    epochs = url.slider("epochs", "Epochs", 1, 30, 5, where=c3)
    ft_epochs = url.slider("ftepochs", "Fine-tuning epochs", 1, 10, 2, where=c3)
    batch_size = url.select_slider("batch", "Batch size", [16, 32, 64], 32, where=c3)
    g1, g2 = st.columns(2)
    g1.markdown("**From scratch**")
    deeper = url.toggle("deeper", "Deeper network (up to 512 filters)", False, where=g1)
    scratch_aug = url.toggle("aug", "Augmentation", False, where=g1, help="Random flips, rotations and zooms.")
    dropout = url.select_slider("dropout", "Dropout", [0.0, 0.25, 0.5], 0.0, where=g1)
    g2.markdown("**Frozen pretrained base**")
    fast = url.toggle("fast", "Fast path: cached base features", True, where=g2,
                      help="Run the frozen base once over all images, then train only the head on the stored "
                           "features. Not possible with augmentation.")
    frozen_aug = url.toggle("faug", "Augmentation", False, where=g2, help="Random flips, rotations and zooms: "
                            "the base then runs on every image in every epoch (no fast path).")
    typed_weights = st.text_input("VGG16 weights file (blank: Keras' ImageNet weights, from the Keras cache or "
                                  "downloaded once; a typed file must lie in the data folder or the Keras cache)",
                                  key=f"{PAGE}.weights", placeholder="my_vgg16.weights.h5")
    if full_train > cd.SUBSET_TRAIN:
        st.caption(f"This folder holds {full_train:,} training images: compare the course's 2,000-image subset with the "
                   "full set to see that 'about 70% from scratch' is a small-data effect (about 96% with 25,000 "
                   "images, keras-io).")
if deeper and size < cd.MIN_DEEPER_SIZE and "From scratch" in approaches:
    st.warning(f"The deeper network needs images of at least {cd.MIN_DEEPER_SIZE} pixels; choose a larger size.")

spec = cd.RunSpec(approaches=tuple(approaches), image_size=int(size), epochs=int(epochs), finetune_epochs=int(ft_epochs),
                  batch_size=int(batch_size), deeper=bool(deeper), scratch_augmentation=bool(scratch_aug),
                  dropout=float(dropout), fast_path=bool(fast), frozen_augmentation=bool(frozen_aug), seed=int(seed))
archs = sorted({"vgg16" if a.startswith("VGG16") else "mobilenet_v2" for a in approaches if a != "From scratch"})
choices = {}  # arch -> which weights its base gets; the base itself is loaded where the run trains
for arch in archs:
    typed = typed_weights.strip() if arch == "vgg16" else ""
    try:
        choices[arch] = shared_bases.typed_choice(arch, typed) if typed else shared_bases.imagenet_choice(arch)
    except ValueError as exc:  # UploadError: not allowed or not there; the ImageNet weights are used
        st.error(f"Weights file: {exc}")
        choices[arch] = shared_bases.imagenet_choice(arch)
    info = choices[arch].info
    if info.pretrained:
        st.success(f"{info.label}, from {info.location}.", icon="✅")
    else:
        st.warning(f"**{info.label}.** {info.message} Runs still train and are labelled '(random weights)': "
                   "they show the architecture and the timing, not the accuracy of transfer learning.")

weights_words = {a: f"{choices[a].info.source}:{int(choices[a].info.pretrained)}:"
                    f"{typed_weights.strip() if a == 'vgg16' else ''}" for a in archs}
settings = {"models": list(approaches), "seed": int(seed), "size": int(size), "n": int(n_train), "nval": int(n_val),
            "epochs": int(epochs), "ftepochs": int(ft_epochs), "batch": int(batch_size), "deeper": bool(deeper),
            "aug": bool(scratch_aug), "dropout": float(dropout), "fast": bool(fast), "faug": bool(frozen_aug),
            "weights": weights_words}
run_spec = runs.RunSpec(PAGE, settings, data=folder.digest if folder is not None else "", version=VERSION,
                        secret=live.private_secret() if source_name == "upload" else "")


def make_runs():
    """The job as a recipe: the worker that trains it decodes the images, loads the bases and
    extracts (or reads) the cached features; this process only says what it will show."""
    recipe = cd.recipe_for(folder, spec, int(n_train), int(n_val), [choices[a] for a in archs],
                           str(cd.features_root(live.registry().store.root)) if fast else "")
    return recipe, recipe.describe()


tab_train, tab_results, tab_models, tab_photo, tab_code, tab_why = st.tabs(
    ["Train", "Results", "The models", "Your photo", "Keras code", "Why these numbers"])

# ----------------------------------------------------------------------------- train
with tab_train:
    invalid = deeper and size < cd.MIN_DEEPER_SIZE and "From scratch" in approaches
    if folder is None:
        st.info("Get some images first (see above).")
    if run_spec.private:
        st.caption("🔒 A run on your uploaded images is private: it is kept under a secret in your link and its "
                   "images and predictions are never shown to anyone else.")
    run = live.run_panel(PAGE, run_spec, make_runs, budget=Budget.from_env(max_epochs=50, max_samples=2_000_000),
                         seed=int(seed), disabled=folder is None or not approaches or invalid, seed_key=url.key("seed"),
                         label=f"{' + '.join(approaches)} · {size}px · {n_train:,} images · {epochs} ep · seed {seed}",
                         style=live.ViewStyle(continues=cd.continued_runs))
    if run is not None:
        extra = run.record.extra or (live.view(run.key).record.extra if run.record.live else {})
        if extra.get("report"):
            st.caption("🖼️ " + extra["report"])
        for note in extra.get("notes", []):
            st.caption("ℹ️ " + note)
        if "frozen (cached features)" in extra.get("kinds", {}).values() and not run.done:
            st.caption("The frozen-base run first extracts the features of every image (its batch counter waits "
                       "meanwhile), then trains the 25,089-parameter head in seconds per epoch.")
    if run is None:
        st.info("Press **Start training**. The approaches train one after the other in your slot. Anyone who opens "
                "these settings later sees this run; changing a setting never restarts a run — only the button does.")
    live.results_footer(PAGE, run, "val_accuracy", axes=("size", "epochs", "n", "models"), open_settings=url.apply)

# ----------------------------------------------------------------------------- results
result_run = run if run is not None and run.done and run.model_names else None
with tab_results:
    if result_run is None:
        st.info("Train a run first: its approaches are compared here.")
    else:
        kinds = result_run.record.extra.get("kinds", {})
        snap = result_run.snapshot()
        history = result_run.history_frame()
        store_secs = next((mp.results["extract_seconds"] for mp in snap.models.values()
                           if mp.results.get("extract_seconds")), None)
        frame = cd.results_frame(history, kinds, {n: mp.epoch_seconds for n, mp in snap.models.items()}, store_secs)
        st.caption(snap.label)
        st.markdown("**Validation accuracy** after the last epoch")
        per_row = min(3, max(1, len(frame)))  # at most three to a row: names like "VGG16 fine-tuned (random
        rows = list(frame.itertuples(index=False))  # weights)" must fit at 1280 px
        for start in range(0, len(rows), per_row):
            for col, row in zip(st.columns(per_row), rows[start:start + per_row]):
                col.metric(row.model, f"{row[2]:.1%}", help=f"best {row[3]:.1%}, final training accuracy {row[4]:.1%}")
        st.plotly_chart(cd.validation_curves_figure(history, references=REFERENCES), key=f"{PAGE}.valcurves")
        st.dataframe(frame, hide_index=True, key=f"{PAGE}.results",
                     column_config={"model": st.column_config.TextColumn(width="large"),
                                    "how": st.column_config.TextColumn(width="medium"),
                                    **{c: st.column_config.NumberColumn(format="%.3f") for c in
                                       ("final val accuracy", "best val accuracy", "final train accuracy")}})
        heads = frame[frame["how"] == "frozen (cached features)"]
        if len(heads) and store_secs:
            h = heads.iloc[0]
            st.markdown(f"**Time each way.** Extracting the frozen base's features took **{store_secs:.1f} s** once "
                        f"(train and validation images: about what one epoch of the full frozen model costs), then "
                        f"the head trained at **{h['s/epoch']:.2f} s per epoch**. Switch the fast path off to measure "
                        "the full frozen model's epochs here.")
        elif len(heads):
            st.caption("The features were already cached on this server: this run did not pay for extraction.")
        full = frame[frame["how"] == "frozen (full model)"]
        if len(full):
            st.markdown(f"**Time per epoch, full frozen model:** {full.iloc[0]['s/epoch']:.1f} s (the base runs on "
                        "every image in every epoch). Switch the fast path on to compare.")

# ----------------------------------------------------------------------------- the models
with tab_models:
    (sc_frame, sc_tot), (tr_frame, tr_tot), (ft_frame, ft_base_tot, ft_tot) = summaries(int(size), bool(
        deeper and size >= cd.MIN_DEEPER_SIZE))
    st.markdown(f"**From scratch** ({'deeper' if deeper else 'the course'}'s network at {size} px)")
    st.plotly_chart(models.network_figure(sc_frame), key=f"{PAGE}.net.scratch")
    st.dataframe(sc_frame, hide_index=True, key=f"{PAGE}.sum.scratch")
    st.markdown(f"Total params: **{sc_tot['total']:,}**")
    st.markdown(f"**VGG16 base + one sigmoid neuron** (functional API, preprocess_input inside, at {size} px)")
    st.dataframe(tr_frame, hide_index=True, key=f"{PAGE}.sum.transfer")
    st.markdown(f"Total params: **{tr_tot['total']:,}** · Trainable: **{tr_tot['trainable']:,}** · "
                f"Non-trainable: **{tr_tot['non_trainable']:,}**")
    st.caption("At the course's 224 px: 14,739,777 in all, 25,089 trainable (25,088 features + 1 bias). The preprocessing "
               "(RGB→BGR, minus the ImageNet channel means) runs as operations inside the model, so a saved model "
               "takes plain RGB photos.")
    st.markdown("**Fine-tuning:** the base's last four layers unfrozen")
    st.dataframe(ft_frame, hide_index=True, key=f"{PAGE}.sum.finetune")
    st.markdown(f"At {size} px: the base trains **{ft_base_tot['trainable']:,}** and keeps "
                f"**{ft_base_tot['non_trainable']:,}** frozen; with the head "
                f"({ft_tot['trainable'] - ft_base_tot['trainable']:,} parameters at this size) the whole model trains "
                f"**{ft_tot['trainable']:,}**. At the course's 224 px the head has 25,089.")
    if st.toggle("Show the full VGG16 with its ImageNet top (builds 138 million parameters, ~550 MB, a few seconds)",
                 key=f"{PAGE}.showtop"):
        top_frame, top_tot = vgg16_with_top()
        st.dataframe(top_frame, hide_index=True, key=f"{PAGE}.sum.top")
        st.markdown(f"Total params: **{top_tot['total']:,}** (the course's prose says 138,350,544; its table, "
                    "like this one, 138,357,544).")

# ----------------------------------------------------------------------------- your photo
with tab_photo:
    if result_run is None:
        st.info("Train a run first, then ask every trained model about your own photo.")
    else:
        up = st.file_uploader("A photo of a cat or a dog", type=list(uploads.IMAGE_EXTENSIONS), key=f"{PAGE}.photo")
        if up is not None:
            try:
                photo = uploads.image_array(up.getvalue(), max_side=1024, mode="RGB")
            except ValueError as exc:
                st.error(f"{up.name}: {exc}")
            else:
                kinds = result_run.record.extra.get("kinds", {})
                x = cd.resize_photo(photo, int(size))[None]
                probs = {}
                for name in result_run.model_names:
                    arch = cd.arch_of(name)
                    head_only = kinds.get(name) == "frozen (cached features)" and arch in choices
                    predict = cd.stored_predictor(kinds.get(name, "scratch"), result_run.models[name],
                                                  shared_bases.base(choices[arch])[0] if head_only else None, arch)
                    probs[name] = float(predict(x)[0])
                c1, c2 = st.columns([1, 2])
                c1.image(x[0], caption=f"As the models see it ({size}x{size})")
                c2.plotly_chart(cd.photo_probabilities_figure(probs), key=f"{PAGE}.photo_probs")

# ----------------------------------------------------------------------------- code and explanations
with tab_code:
    st.code(keras_code.cats_dogs_code(spec), language="python")

with tab_why:
    st.markdown(f"""
**Frozen base with and without augmentation.** With the 2,000-image subset, a frozen VGG16 whose features are
extracted once (the fast path, no augmentation) gives about **90%** validation accuracy in Chollet's notebooks; with
data augmentation the base must run inside the model on every distorted image and it reaches about **96%**. To
approach the course's **97%**, train the frozen base *end to end* (fast path off) with **augmentation on**, at
**224 px** as in the course, for many epochs (the course trains 30) — on a GPU, since on a CPU each epoch takes minutes.

**From scratch, about 70%,** is a small-data effect: the network memorises 2,000 images (training accuracy near 100%).
With the full 25,000-image Kaggle set the same kind of network reaches about **96%** (keras-io). Augmentation and
dropout, the two tricks the course names next, close part of the gap.

**Fine-tuning** unfreezes the last four layers of the base (block5_conv1–3 and the pooling: 7,079,424 parameters)
and keeps training from the frozen model's weights with a *small* learning rate (1e-5 here), so the pretrained
features are adjusted, not destroyed. The course reports 97.4% → 97.5%.

**Random weights.** Without the ImageNet weights file the base is random: the runs show the architecture and the
time, and accuracy near chance for the frozen base. {pretrained.how_to_get_weights('vgg16')}

**Slips in the course text:** VGG16 has 138,357,544 parameters (the prose says 138,350,544); the frozen base yields
25,088 features (not 25,888); and the fine-tuning code passes `"rmsprop"` (learning rate 1e-3) although the text says
to use a smaller one — `keras.optimizers.RMSprop(learning_rate=1e-5)`.
""")


exercises.try_this(PAGE, url, run)
url.sync()
