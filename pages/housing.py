"""House prices: the course's regression network against scikit-learn (Video 7, outcomes 7-8)."""

from functools import partial
from types import SimpleNamespace

import pandas as pd
import streamlit as st

from dnn2core import regression as reg
from dnn2core import data, experiments, keras_code, runs
from dnn2ui import exercises, live, present
from dnn2ui.sidebar import data_banner
from dnn2ui.state import UrlState

PAGE = "housing"
url = UrlState(PAGE)
st.title("House prices")
st.markdown("A network for **regression** is a classifier with its last activation removed: the output neuron "
            "returns a weighted sum plus an offset, a linear regression on the features the layers below "
            "learned. Train the course's network on the Ames house sales and compare it with the usual "
            "regressors on the very same split.")
url.share_note()
_NO_RESULTS = SimpleNamespace(results={})


@st.cache_data(show_spinner="Loading the Ames house sales…", max_entries=2)
def builtin(where: str):
    """Cached per data folder, so pointing DNN2_DATA_DIR elsewhere is picked up."""
    return reg.load_ames()


@st.cache_data(show_spinner=False, max_entries=8)
def fingerprint(df: pd.DataFrame) -> str:
    return experiments.housing_fingerprint(df)


@st.cache_data(show_spinner="Reading your file…", max_entries=4)
def uploaded(raw: bytes, name: str):
    return reg.read_housing_upload(raw, name)


source = url.radio("data", "Data", ["Built-in Ames sales", "Upload a CSV"], "Built-in Ames sales", horizontal=True)
loaded = None
if source == "Upload a CSV":
    up = st.file_uploader("Kaggle's train.csv or any table with a numeric SalePrice column", type=["csv", "gz"],
                          key="housing.upload")
    if up is not None:
        try:
            loaded = uploaded(up.getvalue(), up.name)
        except ValueError as exc:  # UploadError is a ValueError
            st.error(f"{up.name}: {exc}")
    if loaded is None:
        st.caption("Until a usable file is uploaded, the built-in sales are used.")
if loaded is None:
    try:
        loaded = builtin(str(data.data_dir()))
    except (FileNotFoundError, ValueError) as exc:
        st.error(str(exc))
        st.stop()
df = loaded.data
data_banner(loaded.provenance)
complete = reg.numeric_complete(df)

with present.settings("Settings"):
    c1, c2, c3, c4 = st.columns([1, 1, 1.25, 1])  # the toggles' labels must fit at 1280 px
    epochs = url.number("epochs", "Epochs (the course: 500, then 5,000)", 100, 1, 5000, where=c1, step=50)
    batch_size = url.select_slider("batch", "Batch size", [16, 32, 64, 128, 256], 32, where=c1)
    seed = url.number("seed", "Seed (shuffle and weights)", 0, 0, 1_000_000, where=c2, step=1)
    drop_id = url.checkbox("noid", "Drop the Id column", False, where=c2,
                           help="The course keeps every numeric column, the row number Id too.")
    standardise = url.toggle("std", "Standardised features", False, where=c3,
                             help="Subtract the mean and divide by the spread of each column, using the training "
                                  "rows only.")
    log_target = url.toggle("log", "Log-price target", False, where=c3,
                            help="Train on log(price): errors become relative. The MAE is still shown in dollars.")
    stop = url.toggle("stop", "Early stopping", False, where=c4,
                      help="Stop when the dev loss stops improving and keep the best epoch's weights.")
    patience = url.slider("patience", "Patience (epochs)", 5, 500, 50, where=c4, step=5, disabled=not stop)

if log_target and not standardise:
    st.caption("A log-price target is a number near 0, while raw features run to tens of thousands (LotArea): "
               "without standardised features the network struggles to learn it. Try both toggles together.")
settings = experiments.housing_settings(epochs=epochs, batch=batch_size, seed=seed, noid=drop_id, std=standardise,
                                        log=log_target, stop=stop, patience=patience)
try:
    train, dev, prep = experiments.housing_prepare(df, settings)
except ValueError as exc:
    st.error(str(exc))
    st.stop()
spec = runs.RunSpec(PAGE, settings, data=fingerprint(df), version=experiments.HOUSING_VERSION,
                    secret=live.private_secret() if loaded.provenance.source == "upload" else "")
metric = reg.dollar_metric(log_target)
reference = (live.reference_run(PAGE, std=standardise, log=log_target, epochs=int(epochs))
             or live.reference_run(PAGE, std=standardise, log=log_target, epochs=500) or live.reference_run(PAGE))

tab_net, tab_compare, tab_data, tab_code = st.tabs(["The network", "Against other methods", "The data", "Keras code"])

# ----------------------------------------------------------------------------- the network
with tab_net:
    st.markdown(f"**{len(train):,} training** and **{len(dev):,} dev** houses, **{prep.n_features} features** "
                f"→ 4 x Dense(64, relu) → Dense(1, no activation): "
                f"**{reg.house_param_count(prep.n_features):,} parameters**; rmsprop, MSE loss, MAE metric.")
    if spec.private:
        st.caption("🔒 A run on your uploaded file is private: it is kept under a secret in your link and never "
                   "appears in the class's results.")
    toggles = [name for name, on in (("standardised", standardise), ("log price", log_target),
                                     (f"early stop {patience}", stop), ("no Id", drop_id)) if on]
    # the MAE in dollars (the loss is in dollars², "30B"), on a log axis so the first epochs' $100,000+
    # errors do not flatten the rest; train and dev in two colours; money as money in the run table
    view_style = live.ViewStyle(table=partial(reg.money_table, log_target=log_target),
                                curves={metric: dict(log_y=True, color_by="split", y_title="MAE ($)",
                                                     title="Mean absolute error in dollars (log scale)")})
    run = live.run_panel(PAGE, spec, lambda: experiments.housing_runs(prep, settings),
                         budget=experiments.housing_budget(), seed=int(seed), metrics=(metric,),
                         reference=reference, seed_key=url.key("seed"), style=view_style,
                         label=f"{epochs} ep · batch {batch_size} · seed {seed}"
                               + (" · " + ", ".join(toggles) if toggles else " · as in the course"))
    if run is None:
        st.info("Press **Start training**. The curve shows the mean absolute error in dollars on the training rows "
                "(dashed, orange) and the dev rows (solid, blue) after every epoch, on a log scale: the first "
                "epochs are off by $100,000 and more. The loss itself is the squared error, in dollars².")
    elif run.done and run.model_names:
        snap = run.snapshot()
        mp = snap.models["Network"]
        results = mp.results
        if "dev_mae" in results:
            c1, c2, c3 = st.columns(3)
            c1.metric("Dev MAE", f"${results['dev_mae']:,.0f}", help="The course reports about $30,000.")
            c2.metric("Dev RMSE", f"${results['dev_rmse']:,.0f}")
            c3.metric("Epochs trained", f"{mp.epoch:,}", help=f"{sum(mp.epoch_seconds):.1f} s of training")
            val = mp.history.get("val_loss", [])
            if snap.state == "done" and 0 < len(val) < mp.requested_epochs:
                st.caption(f"Stopped before {mp.requested_epochs:,} epochs; the weights kept are from the best epoch "
                           f"({int(pd.Series(val).idxmin()) + 1}).")
            predicted = run.artifacts().get("Network/dev_predictions")
            if predicted is not None:
                st.plotly_chart(reg.predicted_vs_actual_figure(prep.price_dev, predicted), key="housing.scatter")

    st.subheader("The course's 5,000 epochs")
    st.markdown("The course trains for 500 epochs and gets *within about $30,000* of the price of an unseen "
                "house; trained out to **5,000 epochs** its network *does not appear overfit*. It adds that "
                "longer still, the dev error might rise — and beyond that fall again, by **double descent**: "
                "the test error falls, rises while the model starts to fit the noise of its training set, then "
                "falls a second time once the model is large enough, or trained long enough, to fit that set "
                "almost exactly (epoch-wise double descent). The course doubts its small network gets there.")
    long_run = live.reference_run(PAGE, epochs=5000)
    long_history = long_run.snapshot().models["Network"].history if long_run is not None else {}
    if long_history.get("val_mae"):
        summary = reg.long_run_summary(long_history["mae"], long_history["val_mae"])
        st.plotly_chart(reg.long_run_figure(long_history["mae"], long_history["val_mae"],
                                            title="The course's network over 5,000 epochs: MAE in dollars (log scale)"),
                        key="housing.long_run")
        st.markdown(" ".join(reg.long_run_story(summary)))
        short_run = live.reference_run(PAGE, epochs=500, std=False, log=False)
        if short_run is not None and "dev_mae" in short_run.record.metrics.get("Network", {}):
            at_500 = reg.dev_mae_at(summary, 500)
            st.caption(f"The course's 500-epoch run on this server ended at "
                       f"{reg.money(short_run.record.metrics['Network']['dev_mae'])} dev MAE; the 5,000-epoch run's "
                       f"median around epoch 500 is {reg.money(at_500)}. The dev error jumps by thousands from one "
                       f"epoch to the next, so the last epoch of a run is partly luck: early stopping keeps the "
                       f"best weights instead.")
        st.caption(f"The shipped reference run: course pipeline, seed 0, {live.reference_words(long_run.record)}. "
                   f"With Kaggle's train.csv and the course's settings, Epochs 5,000 opens it above as this page's "
                   f"run; otherwise Start trains your own (about 5 minutes on a CPU).")
    else:
        st.caption("The 5,000-epoch reference run is not on this server (`make reference` trains it).")
    live.results_footer(PAGE, run, "dev_mae", axes=("epochs", "std", "log", "batch", "stop"), open_settings=url.apply)

# ----------------------------------------------------------------------------- other methods
with tab_compare:
    st.markdown("Linear regression, ridge, k-nearest neighbours (on standardised features), a random forest and "
                "gradient boosting, fitted on the same training rows and scored on the same dev rows, with the "
                "same toggles. Errors are in dollars.")
    folds = url.select_slider("cv", "k-fold cross-validation on the training rows", [0, 3, 5, 10], 0,
                              where=st.columns([2, 1])[0], format_func=lambda k: "off" if k == 0 else f"{k} folds")
    # a job like a training: a worker fits them, the run store keeps them for the class and a reload
    base_spec = runs.RunSpec(PAGE, {"part": "baselines", "seed": int(seed), "noid": drop_id, "std": standardise,
                                    "log": log_target, "cv": int(folds)}, data=spec.data, version=1, secret=spec.secret)
    fit_run = live.run_panel("housing.baselines", base_spec,
                             lambda: experiments.housing_baseline_runs(prep, int(seed), int(folds)),
                             budget=experiments.housing_budget(), seed=int(seed), metrics=(),
                             start_label="Fit the five methods", label=f"five methods · seed {seed}"
                             + (f" · {folds}-fold CV" if folds else ""))
    rows = (fit_run.snapshot().models[experiments.BASELINES_RUN].results.get("rows")
            if fit_run is not None and fit_run.done else None)
    if not rows:
        st.info("Press **Fit the five methods** (a few seconds; more with cross-validation). They are fitted in "
                "the training queue, once for the whole class.")
    else:
        table = pd.DataFrame(rows)
        if run is not None and run.done and "dev_mae" in run.snapshot().models.get("Network", _NO_RESULTS).results:
            mp = run.snapshot().models["Network"]
            table = reg.with_network(table, "Network (course)", mp.results, sum(mp.epoch_seconds))
        else:
            st.caption("Train the network with these settings to add its row.")
        st.dataframe(table.style.format({c: "{:,.0f}" for c in table.columns if "($)" in c}
                                        | {"fit seconds": "{:.2f}"}),
                     hide_index=True, key="housing.table")
        st.plotly_chart(reg.comparison_figure(table), key="housing.compare")
        standing = reg.network_vs_baselines(table)
        if standing is not None and standing["rank"] > 1:
            st.markdown(f"Here the network comes **{standing['rank']} of {standing['of']}**: "
                        f"{reg.money(standing['network_mae'])} dev MAE against "
                        f"{reg.money(standing['best_mae'])} for {standing['best'].lower()}, "
                        f"behind {', '.join(m.lower() for m in standing['behind'])}.")
        elif standing is not None:
            st.markdown(f"Here the network comes **first**, at {reg.money(standing['network_mae'])} dev MAE.")
        st.caption("Fit seconds are wall-clock on this server (shared with other learners); the network's are its "
                   "training epochs only.")
    with st.expander("Why the network loses to boosting and linear models on this table", expanded=True):
        st.markdown(
            "- **Few rows.** 1,000 training houses to set 14,977 weights: the network can fit the training "
            "houses closely (see the 5,000-epoch run) without learning what carries over to new ones. Linear "
            "regression sets one weight per column; boosting adds small trees one at a time, each fitted to "
            "what the others still get wrong.\n"
            "- **Tabular features.** Each column already means something (area, year, rooms). Gradient boosting "
            "and random forests split on thresholds of single columns, which suits such tables; a network's "
            "strength, learning features from raw pixels or sequences, has little to find here.\n"
            "- **No feature scaling in the course pipeline.** LotArea runs to 200,000 while a room count is "
            "below 15, and the target runs to $755,000: one learning rate cannot suit every weight, so training "
            "is slow and noisy. Trees do not care about scale; linear regression is solved exactly, not by "
            "gradient steps. Turn on *Standardised features* and *Log-price target* and the gap shrinks.\n"
            "- **Squared error on raw prices.** The MSE loss lets the few most expensive houses dominate the "
            "gradient; a log price makes every error relative.\n"
            "- **One seed, 121 dev houses.** The dev error moves by thousands from one epoch or seed to the "
            "next: compare with cross-validation before calling a winner.")

# ----------------------------------------------------------------------------- the data
with tab_data:
    st.markdown(f"**{len(df):,} sales x {df.shape[1]} columns.** The course's preview:")
    st.dataframe(reg.preview(df), hide_index=True, key="housing.preview")
    st.markdown(f"Numeric columns only, rows with a gap dropped (`df._get_numeric_data().dropna()`): "
                f"**{len(complete):,} rows x {complete.shape[1]} columns**, so **{prep.n_features} features** and "
                f"the SalePrice target. Shuffled with seed {seed}: the first **{len(train):,}** train, the other "
                f"**{len(dev):,}** are the dev set.")
    st.caption("The course's code says `np.split(df, [121])`, which would put 121 rows first; its prose "
               "(1,000 training and 121 dev houses) needs `np.split(df, [1000])`. (With pandas 3, np.split "
               "returns plain arrays, so the code here uses `iloc`.)")
    st.markdown("Features: " + ", ".join(f"`{c}`" for c in prep.feature_names))

with tab_code:
    st.code(keras_code.housing_code(settings, prep.n_features, len(train)), language="python")


exercises.try_this(PAGE, url, run)
url.sync()
