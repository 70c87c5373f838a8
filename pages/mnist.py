"""MNIST: the course's dense network vs its CNN, trained live (Video 2, outcomes 1-2)."""

import numpy as np
import pandas as pd
import streamlit as st

from dnn2core import data, digits, evaluation, experiments, keras_code, models, plots, runs, uploads
from dnn2core.training import build_locked
from dnn2ui import canvas, exercises, live, present
from dnn2ui.sidebar import data_banner
from dnn2ui.state import UrlState

PAGE = "mnist"
url = UrlState(PAGE)
st.title("MNIST: dense vs CNN")
st.markdown("The course's two digit classifiers, side by side: a **dense network** that flattens the image "
            "(50,890 parameters) and a **convolutional network** that keeps its 2D structure (104,202). "
            "Train them here and see why the CNN wins.")
url.share_note()


@st.cache_resource(show_spinner=False, max_entries=2)
def test_digits(where: str) -> tuple[np.ndarray, np.ndarray]:
    """The test digits scaled to [0, 1], once per server (31 MB: not rebuilt on every rerun)."""
    d = experiments.mnist_here(where)[0].data
    x, y = d.x_test.astype(np.float32) / 255.0, d.y_test.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False  # shared by every session: read-only
    return x, y


@st.cache_resource(show_spinner="Building the models…")
def summaries(api: str):
    built = {"Dense": build_locked(models.build_mnist_dense, api), "CNN": build_locked(models.build_mnist_cnn, api)}
    return {name: (models.summary_frame(m), models.param_totals(m), models.first_conv_arithmetic(m))
            for name, m in built.items()}


with st.spinner("Loading MNIST…"):  # once per server process and data folder; its fingerprint keys every run
    loaded, fingerprint = experiments.mnist_here(str(data.data_dir()))
data_banner(loaded.provenance)
n_available = len(loaded.data.y_train)

with present.settings("Training settings"):
    c1, c2, c3, c4 = st.columns(4)
    chosen = url.multiselect("models", "Models", ["Dense", "CNN"], ["Dense", "CNN"], where=c1)
    api = url.radio("api", "Keras API", ["sequential", "functional"], "sequential", where=c1, horizontal=True)
    epochs = url.slider("epochs", "Epochs", 1, 20, 2, where=c2)
    batch_size = url.select_slider("batch", "Batch size", [16, 32, 64, 128, 256], 32, where=c2)
    optimizer = url.selectbox("opt", "Optimizer", list(models.OPTIMIZERS), "rmsprop", where=c3)
    learning_rate = url.select_slider("lr", "Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], 1e-3,
                                      where=c3, format_func=lambda v: f"{v:g}")
    sizes = [s for s in (500, 1000, 2000, 5000, 10000, 20000, 30000, 60000) if s < n_available] + [n_available]
    train_size = url.select_slider("n", "Training digits", sizes, min(5000, n_available), where=c4,
                                   format_func=lambda v: f"{v:,}")
    val_split = url.slider("val", "Validation split", 0.05, 0.3, 0.1, where=c4, step=0.05)
    seed = url.number("seed", "Seed", 0, 0, 1_000_000, where=c1, step=1)

settings = experiments.mnist_settings(models=chosen, api=api, epochs=epochs, batch=batch_size, opt=optimizer,
                                      lr=learning_rate, n=train_size, val=val_split, seed=seed)
spec = runs.RunSpec(PAGE, settings, data=fingerprint, version=experiments.MNIST_VERSION)
reference = live.reference_run(PAGE)

tab_train, tab_model, tab_eval, tab_digit, tab_shift, tab_code = st.tabs(
    ["Train", "The models", "Evaluate", "Your digit", "Move the digits", "Keras code"])

# ----------------------------------------------------------------------------- train
with tab_train:
    if not chosen:
        st.warning("Choose at least one model.")
    run = live.run_panel(
        PAGE, spec, lambda: experiments.MnistRecipe(settings, fingerprint), budget=experiments.mnist_budget(),
        seed=int(seed), disabled=not chosen, reference=reference, metrics=("loss", "accuracy"), seed_key=url.key("seed"),
        label=f"{' + '.join(chosen)} · {epochs} ep · batch {batch_size} · {optimizer} {learning_rate:g} "
              f"· {train_size:,} digits · seed {seed}")
    st.markdown("**Against the course.** The course's full run (60,000 digits, 5 epochs, rmsprop) reaches about "
                "**97%** test accuracy with the dense network and **99.3%** with the CNN.")
    shown = run if run is not None and run.done else None
    ref_settings = reference.record.settings if reference is not None else {}
    st.dataframe(evaluation.against_course(
        shown.record.metrics if shown is not None else None,
        f"this run ({shown.record.settings.get('n', 0):,} digits, {shown.record.settings.get('epochs')} ep)"
        if shown is not None else "",
        reference.record.metrics if reference is not None else None,
        f"the course's settings on this server ({ref_settings.get('n', 0):,} digits, {ref_settings.get('epochs')} ep)"),
        hide_index=True, key="mnist.against_course")
    if reference is not None:
        st.caption(f"The course's settings (60,000 digits, 5 epochs, Dense and CNN, rmsprop, seed 0), "
                   f"{live.reference_words(reference.record)}. The default here trains {train_size:,} digits for "
                   f"{epochs} epochs so it finishes in about a minute on a CPU: expect a point or two less.")
    else:
        st.caption("The course's reference run is not on this server (`make reference` trains it).")
    if run is None:
        st.info("Press **Start training**. Both models train one after the other in the same slot; curves "
                "update after every epoch. Anyone who opens these settings later sees this run at once; "
                "changing a setting never restarts a run — only the button does.")
    live.results_footer(PAGE, run, "test_accuracy", axes=("lr", "epochs", "n", "batch", "opt"), open_settings=url.apply)

# ----------------------------------------------------------------------------- the models
with tab_model:
    info = summaries(api)
    for name in ("Dense", "CNN"):
        frame, totals, conv = info[name]
        st.markdown(f"**{name}** ({api} API)")
        st.plotly_chart(models.network_figure(frame), key=f"mnist.net.{name}")
        st.dataframe(frame, hide_index=True, key=f"mnist.summary.{name}")
        st.markdown(f"Total params: **{totals['total']:,}** · Trainable: **{totals['trainable']:,}** · "
                    f"Non-trainable: **{totals['non_trainable']:,}**")
        if conv is not None:
            st.latex(rf"(k_h \cdot k_w \cdot C + 1) \cdot K = ({conv['kh']} \cdot {conv['kw']} \cdot {conv['channels']}"
                     rf" + 1) \cdot {conv['filters']} = {conv['formula']:,}")
            st.caption("Each of the first layer's filters is a 3x3 grid of weights on one input channel, plus a "
                       "bias: read straight from the model's kernel shape. Pooling and Flatten have no parameters.")
    st.caption("The course's summary prints 'Trainable params: 50,980' for the dense model: a slip, it is 50,890.")

# ----------------------------------------------------------------------------- evaluation helpers
eval_run = run if run is not None and run.done and run.model_names else None


@st.cache_data(max_entries=16, show_spinner=False)
def probs_for(key: str, name: str) -> np.ndarray:
    """Test-set probabilities of a stored run's model: stored with the run, else predicted once
    (shared by every learner who opens the run; bounded)."""
    v = live.view(key)
    stored = v.artifacts().get(f"{name}/test_probs")
    if stored is not None:
        return stored
    return evaluation.predict_probs(v.models[name], x_test, name.lower())


@st.cache_data(max_entries=16, show_spinner="Moving the test digits…")
def shift_curves(key: str, n: int) -> tuple[dict, dict]:
    """The moved digits' accuracy: stored with the run by the worker that trained it; runs stored
    before that (and reference runs) are computed here once."""
    v = live.view(key)
    shifts, curves, corner = list(experiments.SHIFTS), {}, {}
    stored = v.artifacts()
    if all(f"{name}/shift_accuracy" in stored for name in v.model_names):
        results = {name: mp.results for name, mp in v.snapshot().models.items()}
        for name in v.model_names:
            curves[name] = [float(a) for a in stored[f"{name}/shift_accuracy"]]
            corner[name] = float(results[name].get("corner_accuracy", float("nan")))
        return curves, corner
    for name in v.model_names:
        m = v.models[name]

        def predict(x, m=m, kind=name.lower()):
            return evaluation.predict_probs(m, x, kind)
        curves[name] = evaluation.accuracy_vs_shift(predict, x_test[:n], y_test[:n], shifts)
        corner[name] = float((predict(digits.to_top_right(x_test[:n])).argmax(1) == y_test[:n]).mean())
    return curves, corner


x_test, y_test = test_digits(str(data.data_dir()))

with tab_eval:
    if eval_run is None:
        st.info("Train a run first (or open the settings of a finished one); its models are evaluated here on the "
                "test digits.")
    else:
        st.caption(f"Evaluating {eval_run.snapshot().label} on {len(y_test):,} test digits.")
        cols = st.columns(len(eval_run.model_names))
        per_class = {}
        for col, name in zip(cols, eval_run.model_names):
            probs = probs_for(eval_run.key, name)
            pred = probs.argmax(axis=1)
            cm = evaluation.confusion_matrix(y_test, pred)
            per_class[name] = evaluation.per_class_accuracy(cm)
            with col:
                st.metric(f"{name} test accuracy", f"{(pred == y_test).mean():.2%}")
                st.plotly_chart(evaluation.confusion_figure(cm, f"{name}: confusion matrix"),
                                key=f"mnist.cm.{name}")
                wrong = evaluation.misclassified(probs, y_test, limit=16)
                captions = [f"{y_test[i]}→{pred[i]} ({probs[i, pred[i]]:.0%})" for i in wrong]
                st.markdown(f"Most confidently wrong ({int((pred != y_test).sum())} errors):")
                st.plotly_chart(evaluation.gallery_figure(x_test[wrong], captions, columns=4),
                                key=f"mnist.wrong.{name}")
        st.plotly_chart(plots.bars_figure([str(d) for d in range(10)], per_class, "Accuracy per digit",
                                          y_title="accuracy"), key="mnist.perclass")

with tab_digit:
    if eval_run is None:
        st.info("Train a run first, then classify a test digit or your own picture here.")
    else:
        src = st.radio("Digit", ["Draw one", "A test digit", "Upload a picture"], horizontal=True,
                       key="mnist.digit_src")
        digit, test_probs = None, {}
        if src == "Draw one":
            pad, tips = st.columns([1, 2])
            with pad:
                st.caption("Draw here ↓")  # room for the pad's toolbar, which floats above it
                png = canvas.draw_digit("mnist.canvas")
            tips.markdown("Draw a digit with the mouse or a finger, large and centred, then let go: both models "
                          "classify it. The icons above the pad undo, redo and clear it (the bin). Your drawing "
                          "is cropped, scaled into a 20×20 box and centred like the MNIST digits before the "
                          "models see it.")
            try:
                digit = digits.digit_from_canvas(png)
            except ValueError as exc:  # the canvas's picture failed the upload checks
                st.error(f"The drawing could not be read: {exc}")
            if digit is None and png:
                tips.info("The pad is blank: draw a digit.")
        elif src == "A test digit":
            idx = st.number_input("Test digit number", 0, len(y_test) - 1, 0, key="mnist.digit_idx")
            digit = x_test[int(idx)]
            st.caption(f"True label: {y_test[int(idx)]}")
            test_probs = {name: probs_for(eval_run.key, name)[int(idx)] for name in eval_run.model_names}
        else:
            up = st.file_uploader("A photo or drawing of one digit", type=list(uploads.IMAGE_EXTENSIONS),
                                  key="mnist.upload")
            if up is not None:
                try:
                    digit = digits.digit_from_image(uploads.image_array(up.getvalue(), max_side=512, mode="L"))
                except ValueError as exc:  # UploadError is a ValueError too
                    st.error(f"{up.name}: {exc}")
        if digit is not None:
            c1, c2 = st.columns([1, 3])
            c1.plotly_chart(plots.image_figure(digit, "As the models see it (28x28)", height=260), key="mnist.digit")
            series = test_probs if src == "A test digit" else {  # a test digit's probabilities are stored
                name: evaluation.predict_probs(eval_run.models[name], digit[None], name.lower())[0]
                for name in eval_run.model_names}
            c2.plotly_chart(plots.bars_figure([str(d) for d in range(10)], series, "Class probabilities",
                                              y_title="probability"), key="mnist.digit_probs")

with tab_shift:
    st.markdown("The course's argument: a dense network must relearn every feature at every location, while "
                "convolutions are shared across the image. Move the test digits and watch both accuracies.")
    if eval_run is None:
        st.info("Train a run first.")
    else:
        shifts = list(experiments.SHIFTS)
        curves, corner = shift_curves(eval_run.key, min(experiments.SHIFT_DIGITS, len(y_test)))
        st.plotly_chart(evaluation.shift_figure(shifts, curves), key="mnist.shift_fig")
        st.dataframe(pd.DataFrame({"model": list(corner), "accuracy, digit shrunk into the top-right corner":
                                   [f"{v:.1%}" for v in corner.values()]}), hide_index=True)
        st.caption("Neither model is fully translation invariant: pooling gives the CNN some tolerance to small "
                   "shifts, and neither has seen digits in a corner during training.")

with tab_code:
    st.code(keras_code.mnist_code(settings), language="python")


exercises.try_this("mnist", url, run)
url.sync()
