"""Forecasting traffic: dense vs SimpleRNN vs LSTM against classical time-series models (Video 6, outcomes 5-6)."""

import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from dnn2core import data, experiments, forecasting as fc, keras_code, models, runs, uploads
from dnn2core.training import build_locked
from dnn2ui import exercises, live, present
from dnn2ui.sidebar import data_banner
from dnn2ui.state import UrlState

PAGE = "sequences"
url = UrlState(PAGE)
st.title("Forecasting traffic")
st.markdown("The course's Video 6: forecast the next **24 hours** of traffic from the last **6 hours** with a dense "
            "network, a **SimpleRNN** and an **LSTM** (16 units each), then hold them against classical "
            "time-series forecasts — persistence, seasonal naive and SARIMA — on the same validation windows.")
url.share_note()

SOURCES = ("Traffic (built-in loader)", "Upload a CSV")
POLICIES = {"longest": "use the longest clean stretch", "refuse": "refuse the series"}
HOURS = (500, 1000, 2000, 4000, 8000, 14000, 0)
EPOCHS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


@st.cache_resource(show_spinner="Loading the traffic series…")
def traffic(where: str):
    return fc.load_traffic()


@st.cache_data(max_entries=8, show_spinner="Cleaning the series…")
def clean_builtin(where: str, max_gap: int, policy: str, aggregation: str):
    return fc.series_from_table(traffic(where).data, max_gap=max_gap, policy=policy, aggregation=aggregation)


@st.cache_data(max_entries=4, show_spinner="Reading your file…")
def read_upload(raw: bytes) -> pd.DataFrame:
    return uploads.read_table(raw)


@st.cache_data(max_entries=8, show_spinner="Cleaning the series…")
def clean_upload(frame: pd.DataFrame, time_col: str, value_col: str, max_gap: int, policy: str, aggregation: str):
    return fc.clean_hourly(frame, time_col, value_col, max_gap=max_gap, policy=policy, aggregation=aggregation)


@st.cache_data(max_entries=8, show_spinner=False)
def fingerprint(series: pd.Series) -> str:
    return experiments.sequences_fingerprint(series)


@st.cache_data(max_entries=8, show_spinner="Windowing…")
def prepared(series: pd.Series, h: int, layout: str, extras: tuple[str, ...]):
    return fc.prepare(series, h=h, layout=layout, extras=extras)


@st.cache_resource(show_spinner="Building the models…")
def model_table(shape: tuple[int, int]) -> pd.DataFrame:
    rows = []
    for kind in fc.MODEL_KINDS:
        m = build_locked(fc.build_forecaster, kind, shape)
        rows.append({"model": kind, "layers": " → ".join(type(l).__name__ for l in m.layers),
                     "params (Keras)": models.param_totals(m)["total"],
                     "params (formula)": fc.expected_params(kind, shape)})
    return pd.DataFrame(rows)


def stop_page() -> None:
    url.sync()
    st.stop()


# ----------------------------------------------------------------------------- data
with present.settings("Data and cleaning"):
    c1, c2, c3 = st.columns([2, 2, 1])
    source = url.radio("source", "Series", SOURCES, SOURCES[0], where=c1, horizontal=True)
    max_gap = url.slider("gap", "Interpolate gaps up to (hours)", 0, 48, 6, where=c2,
                         help="Shorter runs of missing hours are filled linearly; longer ones are never invented.")
    policy = url.radio("policy", "Longer gaps", list(POLICIES), "longest", where=c2, horizontal=True,
                       format_func=POLICIES.get)
    aggregation = url.radio("agg", "Several readings per hour", ["mean", "sum"], "mean", where=c3,
                            help="mean for rates (vehicles/hour, MW), sum for counts per 5 minutes.")
    cleaned = None
    try:
        if source == SOURCES[0]:
            loaded = traffic(str(data.data_dir()))
            data_banner(loaded.provenance)
            table = loaded.data
            cleaned = clean_builtin(str(data.data_dir()), max_gap, policy, aggregation)
            quantity, unit = table.quantity, table.unit
        else:
            up = st.file_uploader("An hourly (or finer) series: CSV with a timestamp and a value column, optionally "
                                  "gzipped — e.g. the UCI Metro Interstate file or a PeMS station export",
                                  type=["csv", "gz", "txt"], key="sequences.upload")
            if up is None:
                st.info("Upload a CSV to continue, or switch back to the built-in traffic series.")
                stop_page()
            frame = read_upload(up.getvalue())
            guess_t, guess_v = fc.detect_columns(frame)
            cols = list(frame.columns)
            u1, u2 = st.columns(2)
            time_col = u1.selectbox("Timestamp column", cols, index=cols.index(guess_t) if guess_t in cols else 0,
                                    key=f"sequences.time_col.{up.file_id}")
            value_col = u2.selectbox("Value column", cols,
                                     index=cols.index(guess_v) if guess_v in cols else min(1, len(cols) - 1),
                                     key=f"sequences.value_col.{up.file_id}")
            cleaned = clean_upload(frame, time_col, value_col, max_gap, policy, aggregation)
            quantity, unit = value_col, ""
            digest = hashlib.sha256(up.getvalue()).hexdigest()[:12]
            data_banner(data.Provenance(up.name, "upload", True,
                                        f"{len(frame):,} rows, columns {time_col!r} and {value_col!r}",
                                        location=f"sha256 {digest}"))
    except ValueError as exc:  # UploadError is a ValueError too
        st.error(str(exc))
        stop_page()
    st.markdown("**What the cleaning did**")
    st.dataframe(cleaned.report.table(), hide_index=True, key="sequences.cleaning")

series_all = cleaned.series

# ----------------------------------------------------------------------------- settings
with present.settings("Windows and models"):
    c1, c2, c3, c4 = st.columns(4)
    hours = url.select_slider("hours", "Hours used (most recent)", list(HOURS), 0, where=c1,
                              format_func=lambda v: "all" if v == 0 else f"{v:,}")
    h = url.select_slider("h", "History window h (hours)", [3, 6, 12, 24, 48], fc.HISTORY_HOURS, where=c1)
    layout = url.radio("layout", "Input shape", ["course", "sequence"], "course", where=c2,
                       format_func={"course": "course: 1 step × h features",
                                    "sequence": "true sequence: h steps × 1 feature"}.get)
    wide1, wide2 = st.columns(2)  # multiselects get a wide row: their chosen items must never be cut off
    extras = url.multiselect("extras", "Extra inputs", list(fc.EXTRA_INPUTS), [], where=wide2)
    chosen = url.multiselect("models", "Networks", list(fc.MODEL_KINDS), list(fc.MODEL_KINDS), where=wide1)
    arima_choice = url.selectbox("arima", "Classical model", list(fc.ARIMA_CHOICES), list(fc.ARIMA_CHOICES)[0],
                                 where=c3)
    epochs = url.select_slider("epochs", "Epochs", list(EPOCHS), 10, where=c4)
    c4.button("Course setting: 500 epochs", key="sequences.course_epochs",
              on_click=lambda: st.session_state.__setitem__(url.key("epochs"), fc.COURSE_EPOCHS),
              help="The course trained 500 epochs: about half an hour for all three on a CPU.")
    seed = url.number("seed", "Seed", 0, 0, 1_000_000, where=c4, step=1)

try:
    prep = prepared(fc.take_last(series_all, hours), int(h), layout, tuple(extras))
except ValueError as exc:
    st.error(str(exc))
    stop_page()

settings = experiments.sequences_settings(gap=max_gap, policy=policy, agg=aggregation, hours=hours, h=h, layout=layout,
                                          extras=extras, models=chosen, epochs=epochs, seed=seed)
spec = runs.RunSpec(PAGE, settings, data=fingerprint(series_all), version=experiments.SEQUENCES_VERSION,
                    secret=live.private_secret() if source != SOURCES[0] else "")
reference = (live.reference_run(PAGE, layout=layout, h=int(h), extras=list(extras))
             or live.reference_run(PAGE, layout=layout) or live.reference_run(PAGE))

tab_data, tab_train, tab_results, tab_cell, tab_code = st.tabs(
    ["Data and windows", "Train", "Results and forecasts", "RNN and LSTM cells, opened", "Keras code"])

# ----------------------------------------------------------------------------- data and windows
with tab_data:
    s = prep.series
    scaled_series = pd.Series(prep.scaled, index=s.index, name="scaled")
    st.plotly_chart(fc.series_figure(scaled_series, f"The first 300 hours, scaled to [0, 1] ({quantity})",
                                     "scaled value", hours=300), key="sequences.first300")
    st.plotly_chart(fc.overview_figure(s, f"All {len(s):,} hours used, day by day (drag the slider to zoom)",
                                       f"{quantity} ({unit})" if unit else quantity), key="sequences.all")
    n_val = len(prep.X_val)
    st.dataframe(pd.DataFrame({
        "array": ["data", "dataX", "dataY", "trainX", "trainY", "valX", "valY"],
        "shape": [str((len(s),)), str((prep.n_windows, *prep.input_shape)), str((prep.n_windows, prep.f)),
                  str(prep.X_train.shape), str(prep.Y_train.shape), str(prep.X_val.shape), str(prep.Y_val.shape)]}),
        hide_index=True, key="sequences.shapes")
    st.markdown(
        f"`build_window(data, {prep.h}, {prep.f})` cuts the series into {prep.n_windows:,} overlapping windows "
        f"(the course: 13,980 hours give 13,950). As in the course, `int(0.8 * len(raw_data))` = "
        f"**{prep.n_train:,}** windows train — the first ones, in time order — and the remaining **{n_val:,}** "
        "validate: shuffling windows before the split would let the networks peek at hours next to the ones "
        "they are scored on.")
    st.markdown(
        f"**Scaling.** Values are mapped to [0, 1] with the minimum ({prep.scaler.lo:,.1f}) and maximum "
        f"({prep.scaler.hi:,.1f}) of the **training part only** — the first {prep.fit_end:,} hours, every hour a "
        "training window sees. Using the whole series would hand the networks the range of the future "
        "(a record peak in the validation months, say) before they are tested on it; so validation values may "
        "fall slightly outside [0, 1], as they would in real use.")
    st.caption("The course text prints `dataX, dataY = [1, []`: a transcription slip for two empty lists.")
    if layout == "course":
        st.info("**Course shape (1, h):** each window is *one* time step with h features. The recurrent layers "
                "run a single step from a zero state, so the SimpleRNN is a dense layer with tanh and the LSTM's "
                "forget gate multiplies a zero memory: nothing recurrent happens. Switch to the true sequence to "
                "let them read the hours one by one.")
    else:
        st.info("**True sequence (h, 1):** each window is h time steps of one value. The recurrent layers read "
                "the hours in order, carrying their state (and the LSTM its cell memory C) from hour to hour. "
                "The dense model flattens the window, so it sees the same numbers either way.")

# ----------------------------------------------------------------------------- train
with tab_train:
    st.dataframe(model_table(prep.input_shape), hide_index=True, key="sequences.models")
    st.caption(f"Input shape {prep.input_shape}. Dense: {prep.input_shape[0] * prep.input_shape[1]}·16+16 + "
               f"16·24+24. SimpleRNN: 16·(features+16+1) + 408. LSTM: four such dense layers, "
               "4·16·(features+16+1) + 408. All: MSE loss, MAE metric, batch 32.")
    if not chosen:
        st.warning("Choose at least one network.")
    run = live.run_panel(PAGE, spec, lambda: experiments.sequences_runs(prep, settings),
                         budget=experiments.sequences_budget(), seed=int(seed), disabled=not chosen,
                         metrics=("loss", "mae"), reference=reference, seed_key=url.key("seed"),
                         label=f"{' + '.join(chosen)} · {epochs} ep · {layout} · h={h}"
                               + (f" · +{', '.join(extras)}" if extras else "") + f" · seed {seed}")
    ref_mse = fc.networks_mse(reference.record.metrics) if reference is not None else {}
    ref_epochs = int(reference.record.settings.get("epochs", fc.COURSE_EPOCHS)) if reference is not None else None
    if run is None:
        st.info(f"Press **Start training**: the networks train one after another, curves update after every "
                f"epoch (train dashed, validation solid, as in the course's figure). The course trained "
                f"{fc.COURSE_EPOCHS} epochs. At {epochs} the ranking is not settled: it can even be reversed, the "
                f"dense network first, because the recurrent ones have more weights to set. The "
                f"{ref_epochs or fc.COURSE_EPOCHS}-epoch reference run below shows the course's ranking.")
    run_mse = fc.networks_mse(run.record.metrics) if run is not None and run.done else {}
    if run_mse:
        st.markdown(fc.ranking_words(run_mse, int(run.record.settings.get("epochs", epochs)), ref_mse, ref_epochs))
        shown_mse = run_mse
        shown_epochs = int(run.record.settings.get("epochs", epochs))
    else:  # before a run: the reference run's numbers alone, beside the course's
        shown_mse = {k: v for k, v in ref_mse.items() if k in chosen}
        shown_epochs = ref_epochs
    if shown_mse:
        frame = fc.ranking_frame(shown_mse, shown_epochs or 0, ref_mse if run_mse else None, ref_epochs,
                                 label="this run" if run_mse else "reference")
        st.dataframe(frame, hide_index=True, key="sequences.ranking",
                     column_config={c: st.column_config.NumberColumn(format="%.2e") for c in frame.columns
                                    if c.endswith("val MSE")})
        if reference is not None:
            st.caption(f"Reference: the course's {ref_epochs}-epoch run in the "
                       f"{reference.record.settings.get('layout')} input shape ({live.reference_words(reference.record)}). "
                       "The course's own numbers come from its freeway sensor: compare rankings, not values.")
    live.results_footer(PAGE, run, "val_mse", axes=("epochs", "layout", "h", "seed"), open_settings=url.apply)

# ----------------------------------------------------------------------------- results
res_run = run if run is not None and run.done and run.model_names else None
res_prep = prep

forecasts: dict[str, np.ndarray] = {}
kinds: dict[str, str] = {}
if res_run is not None:
    stored = res_run.artifacts()
    for name in res_run.model_names:
        fcst = stored.get(f"{name}/val_forecasts")
        if fcst is not None:
            forecasts[name], kinds[name] = fcst, "network"
for name, fcst in fc.baseline_forecasts(res_prep).items():
    forecasts[name], kinds[name] = fcst, "classical"

with tab_results:
    # the classical model is fitted like a training: by a worker, once per setting for the whole class
    arima_spec = runs.RunSpec(PAGE, experiments.sequences_classical_settings(settings, arima_choice), data=spec.data,
                              version=1, secret=spec.secret)
    arima_run = live.run_panel("sequences.arima", arima_spec,
                               lambda: experiments.sequences_classical_runs(prep, arima_choice),
                               budget=experiments.sequences_budget(), seed=0, metrics=(),
                               start_label=f"Fit {arima_choice}", label=f"{arima_choice} · h={h} · {layout}")
    arima_res = None
    fitted = arima_run.snapshot().models.get(arima_choice) if arima_run is not None and arima_run.done else None
    if fitted is not None and "fit_hours" in fitted.results:
        arima_res = fc.arima_from_task(arima_choice, fitted.results, arima_run.artifacts()[f"{arima_choice}/forecasts"])
        forecasts[arima_res.label], kinds[arima_res.label] = arima_res.forecasts, "classical"
    elif arima_run is None:
        st.caption(f"Press **Fit {arima_choice}** to add the classical model (a few seconds, in the training "
                   "queue; once for the whole class).")
    if res_run is None:
        st.info("Train the networks to add them here; the classical baselines are already scored on the "
                "validation windows they will face.")
    else:
        st.caption(f"Networks from {res_run.snapshot().label}, scored on that run's validation windows.")
    table = fc.results_table(forecasts, res_prep, kinds)
    st.dataframe(table, hide_index=True, key="sequences.results",
                 column_config={"val MSE": st.column_config.NumberColumn(format="%.2e"),
                                "val MAE": st.column_config.NumberColumn(format="%.4f"),
                                "MAE (original units)": st.column_config.NumberColumn(format="%.1f")})
    st.caption("Every row: the same validation windows, all 24 hours ahead, MSE on the [0, 1] scale (what Keras "
               "reports as val_loss). The course reports after 500 epochs: dense 2.17e-2, SimpleRNN 2.06e-2, "
               "LSTM 1.91e-2 — on its own freeway sensor, so compare rankings rather than numbers.")
    if arima_res is not None:
        st.caption(f"{arima_res.label}: parameters estimated on the last {arima_res.fit_hours:,} hours of the "
                   f"training part ({arima_res.fit_seconds:.1f} s{'' if arima_res.converged else ', not converged'}), "
                   "then run with those fixed parameters from there to the end of the series (Kalman filtering, "
                   f"no refit), forecasting 24 h from every one of the {len(res_prep.origins_val):,} validation "
                   "origins with only the hours before each.")
    st.markdown("**Persistence** repeats the last hour; **seasonal naive** repeats the same hour yesterday — it "
                "reads 24 hours back in the series, further than the networks' 6-hour window. A network that "
                "does not beat seasonal naive has not learned the daily rhythm better than a calendar.")
    n_val = len(res_prep.X_val)
    wkey = url.key("window")
    if wkey in st.session_state and st.session_state[wkey] > n_val - 1:
        st.session_state[wkey] = n_val - 1
    window = url.slider("window", "Validation window", 0, n_val - 1, min(n_val - 1, 100))
    scale = st.radio("Units", ["scaled", "original"], horizontal=True, key="sequences.units")
    st.plotly_chart(fc.window_figure(res_prep, int(window), forecasts, scale=scale), key="sequences.window_fig")
    st.plotly_chart(fc.one_step_figure(res_prep, forecasts), key="sequences.onestep")
    st.plotly_chart(fc.horizon_figure(res_prep, forecasts), key="sequences.horizon")

# ----------------------------------------------------------------------------- RNN and LSTM cells
with tab_cell:
    st.markdown("**State and memory.** A forecast at hour *k* is made from the last hours *X_k*, and the "
                "network made a forecast *y_{k-1}* an hour ago from the hours before. Feed that earlier output "
                "back in, *y_k = f(X_k, y_{k-1})*, and the network reaches, through it, hours it no longer "
                "sees: its output is a **state** that summarises the whole past, kept in a **memory cell**, "
                "without storing the past itself.")
    st.latex(r"y_k = \tanh(A_y\,y_{k-1} + A_x\,X_k + b)")
    st.markdown("That is the simplest memory cell, Keras' `SimpleRNN`: a dense layer with weights *A_y* on the "
                "previous output, *A_x* on the new input, an offset *b* and tanh. **It is autoregression with "
                "a nonlinearity**: an AR model also feeds past values back, "
                "*y_k = c + φ_1 y_{k-1} + … + φ_p y_{k-p}*, but with fixed linear weights and a fixed number of "
                "lags; the RNN learns its weights and keeps an unbounded, compressed past in its state. The "
                "catch: through repeated tanh and multiplication old information fades (vanishing gradients), "
                "which is what the LSTM's separate cell state *C* below is built to resist.")
    st.caption("The course text says this cell \"is implemented in scikit-learn in the simple RNN class\": a slip. "
               "scikit-learn has no recurrent networks; it is Keras' `keras.layers.SimpleRNN`, used on this page.")
    st.markdown("**The LSTM cell.** Four dense layers and two states: the output *y* and the hidden cell state *C*, "
                "with σ1 deciding what to forget, σ2 what to add, σ3 what to show.")
    st.latex(r"\sigma_1 = \sigma(A_{y1}y_{k-1} + A_{x1}X_k + b_1)\quad \sigma_2 = \sigma(A_{y2}y_{k-1} + "
             r"A_{x2}X_k + b_2)\quad U_k = \tanh(A_{yU}y_{k-1} + A_{xU}X_k + b_U)")
    st.latex(r"C_k = \sigma_1 C_{k-1} + \sigma_2 U_k \qquad y_k = \sigma_3 \tanh(C_k)")
    lstm = res_run.models.get("LSTM") if res_run is not None else None
    if lstm is None:
        st.info("Train a run that includes the LSTM; its gates are then computed here, step by step, from its "
                "trained weights, for the validation window chosen under *Results and forecasts*.")
    else:
        x_window = res_prep.X_val[int(window)]
        steps = fc.lstm_gates(lstm, x_window)
        keras_y = np.asarray(fc.lstm_layer(lstm)(x_window[None]))[0]
        st.plotly_chart(fc.gates_figure(steps), key="sequences.gates")
        k = st.slider("Time step k", 1, len(steps), len(steps), key="sequences.step") if len(steps) > 1 else 1
        st.markdown(f"Input X_{k} = {np.array2string(steps[k - 1].x, precision=3)}")
        st.dataframe(fc.gates_frame(steps, k - 1), hide_index=True, key="sequences.gates_table",
                     column_config={c: st.column_config.NumberColumn(format="%.4f")
                                    for c in fc.gates_frame(steps, k - 1).columns if c != "unit"})
        diff = float(np.max(np.abs(steps[-1].y - keras_y)))
        st.markdown(f"NumPy's y_{len(steps)} vs Keras' LSTM output: largest difference **{diff:.1e}**. "
                    "Keras keeps the four dense layers side by side in one kernel, in the order input (σ2), "
                    "forget (σ1), candidate (U), output (σ3).")
        if len(steps) == 1:
            st.caption("With the course's input shape there is one step and C_0 = 0, so σ1 has nothing to "
                       "forget: switch to the true sequence and train again to see memory carried across hours.")

with tab_code:
    st.code(keras_code.sequences_code(settings, prep.input_shape), language="python")


exercises.try_this(PAGE, url, run)
url.sync()
