"""Tricks of the trade: shuffling, early stopping, rare classes and divide and conquer, each a one-minute
experiment."""

import numpy as np
import pandas as pd
import streamlit as st

from dnn2core import data, evaluation, experiments, hierarchy, keras_code, runs
from dnn2core import tricks as tr
from dnn2core.style import group_color
from dnn2core.training import Budget
from dnn2ui import exercises, live
from dnn2ui.sidebar import data_banner
from dnn2ui.state import UrlState

PAGE = "tricks"
SHUFFLE, STOP, PRIOR, DIVIDE = "tricks.shuffle", "tricks.stop", "tricks.prior", "tricks.divide"  # a run panel each
VERSION = 1
url = UrlState(PAGE)
st.title("Tricks of the trade")
st.markdown("Four pieces of practitioners' lore from the course, each turned into an experiment on handwritten "
            "digits with a small dense network (784 → Dense → 10). Each trains in well under a minute.")
url.share_note()


@st.cache_resource(max_entries=6, show_spinner=False)
def digits(where: str, n: int, seed: int) -> tr.DigitData:
    """A subset per setting, shared read-only and bounded: a link asking for 60,000 digits on all three
    tabs no longer rebuilds (and holds per session) hundreds of MB on every rerun."""
    return tr.digit_data(experiments.mnist_here(where)[0].data, n, 1000, seed)


@st.cache_resource(max_entries=4, show_spinner=False)
def prior(where: str, n: int, rare: int, keep: float, seed: int) -> tr.PriorSetup:
    return tr.prior_setup(digits(where, n, seed), rare, keep, seed)


@st.cache_data(max_entries=8, show_spinner=False)
def class_tree(where: str, n: int, seed: int) -> np.ndarray:
    """The merge tree of the digits' mean images in one training subset: no training needed."""
    d = digits(where, n, seed)
    return hierarchy.class_linkage(hierarchy.class_means(d.x_train, d.y_train))


def spec(part: str, **settings) -> runs.RunSpec:
    """One of the page's four experiments: its settings (the shared seed included) make the key."""
    return runs.RunSpec(PAGE, {"part": part, **settings, "seed": int(seed)}, data=fingerprint, version=VERSION)


WHERE = str(data.data_dir())
with st.spinner("Loading MNIST…"):  # once per server process and data folder; its fingerprint keys every run
    loaded, fingerprint = experiments.mnist_here(WHERE)
data_banner(loaded.provenance)
n_available = len(loaded.data.y_train)
seed = url.number("seed", "Seed (subset, order and weights)", 0, 0, 1_000_000, step=1, where=st.columns([1, 3])[0])
BUDGET = Budget.from_env(max_epochs=200, max_samples=20_000_000)
BATCHES = [8, 16, 32, 64, 128, 256, tr.FULL_BATCH]


@st.cache_data(max_entries=16, show_spinner="Predicting…")
def prior_predictions(key: str, factor: float, _setup, _x_val: np.ndarray) -> dict:
    """The four stored models' validation predictions (and the moved threshold), once per run and factor."""
    return tr.prior_predictions(live.view(key).models, _setup, _x_val, factor=factor)


def batch_label(b: int) -> str:
    return "full batch" if b == tr.FULL_BATCH else str(b)


def sizes(options) -> list[int]:
    return [s for s in options if s < n_available] + [n_available]


tab_shuffle, tab_stop, tab_prior, tab_divide = st.tabs(["Shuffling", "Early stopping", "Rare classes",
                                                        "Divide and conquer"])

# ----------------------------------------------------------------------------- 1. shuffling
with tab_shuffle:
    st.markdown("*Networks learn fastest from the most unexpected sample.* Train the same network with the same "
                "budget on the same digits, once **sorted by class** (all 0s, then all 1s, …) and once "
                "**shuffled**. With small batches the sorted run spends the end of every epoch on 8s and 9s and "
                "forgets the rest; with one full batch the order no longer matters (the course: this is a "
                "trick for *stochastic* learning).")
    c1, c2, c3 = st.columns(3)
    n_shuffle = url.select_slider("sh_n", "Training digits", sizes([1000, 2000, 4000, 8000]),
                                  min(4000, n_available), where=c1, format_func=lambda v: f"{v:,}")
    sh_epochs = url.slider("sh_epochs", "Epochs", 1, 20, 5, where=c1)
    sh_batch = url.select_slider("sh_batch", "Batch size", BATCHES, 32, where=c2, format_func=batch_label)
    sh_opt = url.selectbox("sh_opt", "Optimizer", ["sgd", "adam", "rmsprop"], "sgd", where=c2)
    sh_keras = url.checkbox("sh_keras", "Also: sorted, with fit(shuffle=True)", False, where=c3,
                            help="Keras' fit() reshuffles every epoch by default, which undoes the sorting.")
    sh_spec = spec("shuffle", n=int(n_shuffle), epochs=int(sh_epochs), batch=int(sh_batch), opt=sh_opt,
                   keras=bool(sh_keras))
    sh_net = tr.net_settings("shuffle", sh_spec.settings)
    d_shuffle = digits(WHERE, int(n_shuffle), int(seed))
    ordered_y = d_shuffle.y_train[tr.class_order(d_shuffle.y_train)]
    shuffled_y = d_shuffle.y_train[tr.shuffled_order(len(d_shuffle.y_train), int(seed))]
    st.plotly_chart(tr.order_figure(ordered_y, shuffled_y), key="tricks.order")
    st.caption(f"The sorted run passes `shuffle=False` to `fit()`: by default Keras reshuffles the training "
               f"data every epoch, which would quietly undo the experiment. Validation uses 1,000 separate test "
               f"digits, not `validation_split`, which takes the *last* rows — with sorted data, only 9s. "
               f"The last batches of a sorted epoch hold digits {tr.last_batch_classes(ordered_y, sh_net.batch_size)}.")
    job = live.run_panel(
        SHUFFLE, sh_spec,
        lambda: tr.shuffling_runs(d_shuffle, epochs=sh_net.epochs, batch_size=sh_net.batch_size, hidden=sh_net.hidden,
                                  optimizer=sh_net.optimizer, learning_rate=sh_net.learning_rate, seed=int(seed),
                                  with_keras_shuffle=sh_keras),
        budget=BUDGET, seed=int(seed), start_label="Start: sorted vs shuffled", seed_key=url.key("seed"),
        label=f"{n_shuffle:,} digits · {sh_epochs} ep · batch {batch_label(sh_batch)} · {sh_opt}")
    if job is None:
        st.info("Press **Start** to train both runs one after the other; the curves share their axes.")
    elif job.done:
        snap = job.snapshot()
        rows = [{"run": name, "epochs": mp.epoch,
                 "final validation accuracy": mp.history.get("val_accuracy", [np.nan])[-1],
                 "final validation loss": mp.history.get("val_loss", [np.nan])[-1]}
                for name, mp in snap.models.items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="tricks.shuffle_table")
    live.results_footer(SHUFFLE, job, "val_accuracy", part="shuffle")
    st.code(keras_code.tricks_code("shuffle", sh_spec.settings), language="python")

# ----------------------------------------------------------------------------- 2. early stopping
with tab_stop:
    st.markdown("*The validation error falls, then rises: stop at its lowest point.* A wide network on few "
                "digits overfits quickly. `EarlyStopping(monitor=\"val_loss\", patience=…, "
                "restore_best_weights=True)` stops after *patience* epochs without improvement and puts back the "
                "weights of the best epoch; the check below re-evaluates the weights the model holds at the end.")
    c1, c2, c3 = st.columns(3)
    n_stop = url.select_slider("es_n", "Training digits", sizes([250, 500, 1000, 2000]), min(500, n_available),
                               where=c1, format_func=lambda v: f"{v:,}")
    es_epochs = url.slider("es_epochs", "Most epochs", 5, 100, 40, where=c1)
    patience = url.slider("es_patience", "Patience (epochs)", 1, 20, 3, where=c2)
    es_hidden = url.select_slider("es_hidden", "Hidden units", [32, 64, 128, 256, 512], 256, where=c2)
    es_lr = url.select_slider("es_lr", "Adam learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], 3e-3, where=c3,
                              format_func=lambda v: f"{v:g}")
    es_compare = url.checkbox("es_compare", "Also train for every epoch (no early stopping)", True, where=c3)
    d_stop = digits(WHERE, int(n_stop), int(seed))
    es_spec = spec("stop", n=int(n_stop), epochs=int(es_epochs), patience=int(patience), hidden=int(es_hidden),
                   lr=float(es_lr), compare=bool(es_compare))
    es_net = tr.net_settings("stop", es_spec.settings)
    job = live.run_panel(
        STOP, es_spec,
        lambda: tr.early_stopping_runs(d_stop, max_epochs=es_net.epochs, patience=int(patience),
                                       batch_size=es_net.batch_size, hidden=es_net.hidden,
                                       optimizer=es_net.optimizer, learning_rate=es_net.learning_rate,
                                       compare=es_compare),
        budget=BUDGET, seed=int(seed), start_label="Start: early stopping", seed_key=url.key("seed"),
        style=live.ViewStyle(curves={"loss": dict(mark_best=True, title="Loss, best validation epoch starred")}),
        label=f"{n_stop:,} digits · up to {es_epochs} ep · patience {patience}")
    if job is None:
        st.info("Press **Start**. Watch the solid (validation) loss turn up while the dashed (training) loss keeps "
                "falling.")
    elif job.done and "Early stopping" in job.snapshot().models:
        snap = job.snapshot()
        mp = snap.models["Early stopping"]
        max_epochs = int(es_epochs)  # the run shown is the run of these settings
        if mp.history.get("val_loss") and "final_val_loss" in mp.results:
            report = tr.early_stopping_report(mp.history, mp.results, max_epochs)
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("Best epoch", report["best_epoch"])
            c2.metric("Epochs run", report["epochs_run"],
                      help="Stopped early" if report["stopped_early"] else "Ran every epoch")
            c3.metric("Best validation loss", f"{report['best_val_loss']:.4f}")
            c4.metric("Validation loss of the kept weights", f"{report['kept_val_loss']:.4f}",
                      delta=f"{report['kept_val_loss'] - report['best_val_loss']:+.1e} vs best",
                      delta_color="off")
            words = (f"Stopped after epoch {report['epochs_run']}, {report['epochs_run'] - report['best_epoch']} "
                     f"epochs past the best one" if report["stopped_early"] else "Ran every epoch")
            st.markdown(f"{words}. The last epoch's validation loss was **{report['last_val_loss']:.4f}**; the "
                        f"weights the model holds now give **{report['kept_val_loss']:.4f}**, the best epoch's "
                        f"**{report['best_val_loss']:.4f}**: `restore_best_weights` put them back.")
            other = snap.models.get("All epochs")
            if other is not None and "final_val_loss" in other.results and "final_val_accuracy" in mp.results:
                st.markdown(tr.early_stopping_verdict(mp.results, mp.epoch, other.results, other.epoch,
                                                      len(d_stop.y_val)))
            elif other is None:
                st.caption("Tick *Also train for every epoch* to compare with a run that does not stop.")
    live.results_footer(STOP, job, "val_loss", part="stop")
    st.code(keras_code.tricks_code("stop", es_spec.settings), language="python")

# ----------------------------------------------------------------------------- 3. prior probabilities
with tab_prior:
    st.markdown("*When one class is rare the network learns to ignore it.* Keep only a few examples of one digit, "
                "then compare four remedies: **subsampling** the other classes, **duplicating** the rare one, "
                "**class weights** in the loss, and a **moved decision threshold** (scale the rare class's "
                "probability afterwards; no retraining). Accuracy alone hides the problem: look at the rare "
                "class's recall and precision.")
    c1, c2, c3 = st.columns(3)
    rare = url.selectbox("pr_class", "Rare digit", list(range(10)), 3, where=c1)
    keep = url.select_slider("pr_keep", "Share of it kept", [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0], 0.05, where=c1,
                             format_func=lambda v: f"{v:.0%}")
    n_prior = url.select_slider("pr_n", "Training digits (before thinning)", sizes([1000, 2000, 4000, 8000]),
                                min(4000, n_available), where=c2, format_func=lambda v: f"{v:,}")
    pr_epochs = url.slider("pr_epochs", "Epochs", 1, 20, 5, where=c2)
    auto_factor = url.toggle("pr_auto", "Threshold factor from the priors", True, where=c3)
    manual_factor = url.select_slider("pr_factor", "Threshold factor", [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0], 10.0,
                                      where=c3, disabled=auto_factor, format_func=lambda v: f"x{v:g}")
    d_prior = digits(WHERE, int(n_prior), int(seed))
    prior_key = (WHERE, int(n_prior), int(rare), float(keep), int(seed))  # the cached setup of these settings
    try:
        setup = prior(*prior_key)
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
    factor = setup.factor if auto_factor else float(manual_factor)
    counts = setup.counts()
    st.plotly_chart(tr.counts_figure(counts), key="tricks.counts")
    st.caption(f"Class weights: digit {rare} weighs {setup.weights[int(rare)]:.1f}, the others about "
               f"{np.mean([w for c, w in setup.weights.items() if c != int(rare)]):.2f}. Prior factor for the "
               f"threshold: {setup.factor:.1f} (the other digits were on average that many times more common).")
    pr_spec = spec("prior", rare=int(rare), keep=float(keep), n=int(n_prior), epochs=int(pr_epochs))
    pr_net = tr.net_settings("prior", pr_spec.settings)
    job = live.run_panel(
        PRIOR, pr_spec,
        lambda: tr.prior_runs(setup, d_prior, epochs=pr_net.epochs, batch_size=pr_net.batch_size, hidden=pr_net.hidden,
                              optimizer=pr_net.optimizer, learning_rate=pr_net.learning_rate),
        budget=BUDGET, seed=int(seed),
        start_label="Start: four trainings", seed_key=url.key("seed"),
        label=f"rare {rare} kept {keep:.0%} · {pr_epochs} ep")
    if job is None:
        st.info("Press **Start** to train without correction, with subsampling, duplication and class weights. "
                "The moved threshold reuses the uncorrected model.")
    elif job.done and len(job.models) == 4:
        job_setup, job_data = setup, d_prior  # the run shown is the run of these settings
        f = job_setup.factor if auto_factor else float(manual_factor)
        preds = prior_predictions(job.key, f, job_setup, job_data.x_val)
        y_val = job_data.y_val
        sizes_by_method = {name: len(y) for name, (_, y) in job_setup.sets.items()}
        sizes_by_method["Moved threshold"] = sizes_by_method["No correction"]
        summary = tr.prior_summary(y_val, preds, job_setup.rare_class, sizes_by_method)
        st.dataframe(summary.style.format({c: "{:.1%}" for c in summary.columns
                                           if c not in ("method", "training digits")}),
                     hide_index=True, key="tricks.prior_table")
        st.plotly_chart(tr.recall_figure(y_val, preds, job_setup.rare_class), key="tricks.recall")
        chosen = st.selectbox("Confusion matrix of", list(preds), key="tricks.cm_of")
        c1, c2 = st.columns([3, 2])
        c1.plotly_chart(evaluation.confusion_figure(evaluation.confusion_matrix(y_val, preds[chosen]),
                                                    f"{chosen}: confusion matrix (validation digits)"),
                        key="tricks.cm")
        c2.dataframe(tr.per_class_report(y_val, preds[chosen]).style.format({"precision": "{:.1%}",
                                                                            "recall": "{:.1%}"}),
                     hide_index=True, key="tricks.per_class")
        st.caption(f"Moved threshold: the uncorrected model's probability of {job_setup.rare_class} is multiplied by "
                   f"{f:g} and the probabilities renormalised. Subsampling trained on only "
                   f"{sizes_by_method['Subsampling']:,} digits: the course's warning that it loses information.")
    live.results_footer(PRIOR, job, "val_accuracy", part="prior")
    st.code(keras_code.tricks_code("prior", pr_spec.settings), language="python")

# ----------------------------------------------------------------------------- 4. divide and conquer
with tab_divide:
    st.markdown("*Large problems are solved by divide and conquer.* The course's example is speech recognition: "
                "thousands of classes and millions of examples, where one softmax over everything is slow to train "
                "and hard to fit. A **hierarchy** splits the task: a **coarse** net decides which group of classes "
                "an input belongs to, and a small net per group tells only that group's classes apart. "
                "**Agglomerative clustering** finds the groups without anyone drawing them, even for tens of "
                "thousands of classes: start with every class on its own and keep merging the two closest "
                "clusters. Here the classes are the ten digits and the clustering compares their mean images.")
    st.markdown("An honest expectation: ten digits are *not* a large-scale problem. The flat net usually wins or "
                "ties, because each group net sees only its own digits and a confident coarse mistake cannot be "
                "undone (P(digit) = P(group) × P(digit | group) is then small for the right digit). The "
                "hierarchy's pay-off (many small, fast nets; classes added to one group without retraining the "
                "rest) appears when there are thousands of classes.")
    c1, c2, c3 = st.columns(3)
    n_div = url.select_slider("hd_n", "Training digits", sizes([1000, 2000, 4000, 8000]), min(4000, n_available),
                              where=c1, format_func=lambda v: f"{v:,}")
    hd_k = url.slider("hd_k", "Groups (where the tree is cut)", 2, 5, 4, where=c1)
    hd_epochs = url.slider("hd_epochs", "Epochs (every net)", 1, 20, 5, where=c2)
    hd_hidden = url.select_slider("hd_hidden", "Hidden units (every net)", [16, 32, 64, 128, 256], 64, where=c2)
    c3.caption("Every net, flat, coarse or per group, is 784 → Dense(hidden, relu) → softmax, trained with Adam "
               "(1e-3), batch 32 and the same epochs: only the structure differs.")
    d_div = digits(WHERE, int(n_div), int(seed))
    try:
        tree = class_tree(WHERE, int(n_div), int(seed))
    except ValueError as exc:  # a subset missing a digit cannot be clustered
        st.error(str(exc))
        tree = None
    if tree is not None:
        groups = hierarchy.cut_groups(tree, int(hd_k))
        st.plotly_chart(hierarchy.dendrogram_figure(tree, [str(c) for c in range(10)], int(hd_k)),
                        key="tricks.dendrogram")
        table = hierarchy.groups_table(groups, d_div.y_train, int(hd_hidden))
        st.dataframe(table.style.map(lambda g: f"color: {group_color(int(g) - 1)}; font-weight: bold",
                                     subset=["group"]),
                     hide_index=True, key="tricks.groups_table")
        st.caption(f"Ward linkage on the {n_div:,} training digits' mean images: the lower two digits join, the "
                   f"more alike their average shapes. The dashed line cuts the tree into {len(groups)} groups "
                   f"(coloured); a one-digit group needs no net of its own.")
        hd_spec = spec("divide", n=int(n_div), k=int(hd_k), epochs=int(hd_epochs), hidden=int(hd_hidden))
        hd_net = tr.net_settings("divide", hd_spec.settings)
        job = live.run_panel(
            DIVIDE, hd_spec,
            lambda: hierarchy.hierarchy_runs(d_div, groups, epochs=hd_net.epochs, hidden=hd_net.hidden,
                                             learning_rate=hd_net.learning_rate, batch_size=hd_net.batch_size,
                                             optimizer=hd_net.optimizer),
            budget=BUDGET, seed=int(seed), start_label="Start: flat vs hierarchy", seed_key=url.key("seed"),
            label=f"{n_div:,} digits · {len(groups)} groups · {hd_epochs} ep · {hd_hidden} units")
        if job is None:
            st.info("Press **Start** to train the flat net, the coarse net and one net per group, one after the "
                    "other. Each curve is on its own task: groups for the coarse net, its own digits for a group "
                    "net; the table below compares them on all the validation digits.")
        elif job.done:
            probs = hierarchy.run_probabilities(job.artifacts(), groups)
            if probs is None:
                st.caption("This run stopped before every net was trained and evaluated: train it again to "
                           "compare the hierarchy with the flat net.")
            else:
                y_val = d_div.y_val
                params = {name: mp.params for name, mp in job.snapshot().models.items()}
                summary = hierarchy.summary(y_val, probs, groups, params)
                st.dataframe(summary.style.format({"parameters": "{:,}", "digit accuracy": "{:.1%}",
                                                   "group accuracy": "{:.1%}",
                                                   "errors already in the wrong group": "{:.0%}"}, na_rep="–"),
                             hide_index=True, key="tricks.divide_table")
                st.caption("Group accuracy: the answer lies in the right group. *Errors already in the wrong "
                           "group*: for the flat net, its wrong answers that lie in another group; for the hierarchy, "
                           "its errors where the coarse net had already picked a wrong group. The hierarchy's "
                           "parameters are the coarse net's plus every group net's.")
                st.markdown(hierarchy.divide_verdict(summary, len(y_val)))
                c1, c2 = st.columns([3, 2])
                c1.plotly_chart(evaluation.confusion_figure(evaluation.confusion_matrix(y_val, probs.predicted(groups)),
                                                            "Hierarchy: confusion matrix (validation digits)"),
                                key="tricks.divide_cm")
                c2.markdown("**Each group net against the flat net, on its group's digits**")
                c2.dataframe(hierarchy.group_report(y_val, probs, groups).style.format(
                    {"group net": "{:.1%}", "flat net": "{:.1%}"}), hide_index=True, key="tricks.divide_groups")
                c2.caption("A group net only has to tell a few digits apart, so it often beats the flat net on "
                           "them; the hierarchy still loses what the coarse net sent to the wrong group.")
        live.results_footer(DIVIDE, job, hierarchy.FLAT_ACCURACY, part="divide")
        st.code(keras_code.tricks_code("divide", hd_spec.settings, groups), language="python")


exercises.try_this("tricks", url)
url.sync()
