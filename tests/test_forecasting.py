"""dnn2core.forecasting: the course's windows and models, baselines with known answers, cleaning, the LSTM by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import shared_data
from dnn2core import forecasting as fc

pytestmark = pytest.mark.timeout(120)


def hourly(values, start="2021-03-01 00:00") -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=pd.date_range(start, periods=len(values), freq="h"))


def frame(times, values, tcol="date_time", vcol="traffic_volume") -> pd.DataFrame:
    return pd.DataFrame({tcol: [str(t) for t in times], vcol: values})


# ----------------------------------------------------------------------------- windows, split, scaling

def test_build_window_reproduces_the_course_shapes_and_values():
    data = np.arange(13980, dtype=float)
    X, Y = fc.build_window(data, 6, 24)
    assert data.shape == (13980,) and X.shape == (13950, 1, 6) and Y.shape == (13950, 24)
    np.testing.assert_array_equal(X[0, 0], np.arange(6))
    np.testing.assert_array_equal(Y[0], np.arange(6, 30))
    np.testing.assert_array_equal(X[-1, 0], np.arange(13949, 13955))
    np.testing.assert_array_equal(Y[-1], np.arange(13955, 13979))  # range(len-h-f): the last window is left out
    n_train = fc.course_split(len(data), len(X))
    assert (n_train, len(X) - n_train) == (11184, 2766)  # the course's (11184, 1, 6) / (2766, 1, 6)


def test_prepare_fits_the_scaler_on_the_training_part_only_and_splits_in_time_order():
    values = np.tile(np.r_[np.linspace(10, 20, 12), np.linspace(20, 10, 12)], 20)  # 480 h
    values[-50:] += 100.0  # a surge in the validation part only
    prep = fc.prepare(hourly(values))
    assert prep.n_train == int(0.8 * 480) and prep.fit_end == prep.n_train - 1 + 6 + 24
    assert prep.scaler == fc.Scaler(10.0, 20.0)  # the surge did not leak into the scaling
    assert prep.scaled[: prep.fit_end].min() == 0.0 and prep.scaled[: prep.fit_end].max() == 1.0
    assert prep.Y_val.max() > 1.0  # validation values may leave [0, 1]: that is the honest consequence
    assert prep.X_train.shape == (prep.n_train, 1, 6) and prep.X_val.shape == (480 - 30 - prep.n_train, 1, 6)
    # time order: the first validation window starts right after the last training window
    np.testing.assert_allclose(prep.X_val[0, 0], prep.scaled[prep.n_train:prep.n_train + 6], rtol=1e-6)
    assert prep.origins_val[0] == prep.n_train + 6
    np.testing.assert_allclose(prep.Y_val[5], prep.scaled[prep.origins_val[5]:prep.origins_val[5] + 24], rtol=1e-6)


def test_layouts_and_calendar_inputs():
    s = hourly(np.random.default_rng(0).random(400), start="2021-03-01 00:00")  # a Monday
    course = fc.prepare(s)
    seq = fc.prepare(s, layout="sequence")
    assert course.input_shape == (1, 6) and seq.input_shape == (6, 1)
    np.testing.assert_array_equal(seq.X_train[:, :, 0], course.X_train[:, 0, :])
    both = ["hour of day", "day of week"]
    c_ext = fc.prepare(s, extras=both)
    s_ext = fc.prepare(s, layout="sequence", extras=both)
    assert c_ext.input_shape == (1, 10) and s_ext.input_shape == (6, 5)
    # course layout: the calendar of the first forecast hour (window 0 -> 06:00 on a Monday)
    np.testing.assert_allclose(c_ext.X_train[0, 0, 6:], [1.0, 0.0, np.sin(2 * np.pi * 0.25 / 7),
                                                         np.cos(2 * np.pi * 0.25 / 7)], atol=1e-6)
    # sequence layout: every step carries its own hour (step 3 of window 0 is 03:00)
    np.testing.assert_allclose(s_ext.X_train[0, 3, 1:3], [np.sin(2 * np.pi * 3 / 24), np.cos(2 * np.pi * 3 / 24)],
                               atol=1e-6)
    with pytest.raises(ValueError, match="Unknown extra"):
        fc.prepare(s, extras=["weather"])


# ----------------------------------------------------------------------------- models

@pytest.mark.parametrize("shape, expected", [((1, 6), {"Dense": 520, "SimpleRNN": 776, "LSTM": 1880}),
                                             ((6, 1), {"Dense": 520, "SimpleRNN": 696, "LSTM": 1560}),
                                             ((1, 10), {"Dense": 584, "SimpleRNN": 840, "LSTM": 2136})])
def test_parameter_counts_match_the_course_formulas(shape, expected):
    for kind, count in expected.items():
        model = fc.build_forecaster(kind, shape)
        assert model.count_params() == count == fc.expected_params(kind, shape), kind
        assert model.output_shape == (None, 24)
        assert model.loss == "mse"


def test_our_validation_mse_is_keras_val_loss():
    prep = fc.prepare(hourly(np.random.default_rng(1).random(300)))
    model = fc.build_forecaster("Dense", prep.input_shape)
    loss, mae = model.evaluate(prep.X_val, prep.Y_val, verbose=0, batch_size=len(prep.X_val))
    s = fc.scores(fc.predict(model, prep.X_val), prep.Y_val)
    assert s["mse"] == pytest.approx(loss, rel=1e-5) and s["mae"] == pytest.approx(mae, rel=1e-5)


# ----------------------------------------------------------------------------- baselines

def test_seasonal_naive_is_exact_on_a_pure_daily_cycle():
    day = 100 + 50 * np.sin(2 * np.pi * np.arange(24) / 24) + 10 * np.cos(4 * np.pi * np.arange(24) / 24)
    prep = fc.prepare(hourly(np.tile(day, 20)))
    base = fc.baseline_forecasts(prep)
    assert fc.scores(base["Seasonal naive"], prep.Y_val)["mse"] == 0.0
    assert fc.scores(base["Persistence"], prep.Y_val)["mse"] > 0.05
    # 24 h of history is needed: origins earlier than that get no forecast
    early = fc.seasonal_naive(prep.scaled, np.array([10, 24]), 24)
    assert np.isnan(early[0]).any() and not np.isnan(early[1]).any()
    np.testing.assert_allclose(early[1], prep.scaled[0:24])
    # beyond 24 h it repeats the last observed day
    np.testing.assert_allclose(fc.seasonal_naive(prep.scaled, np.array([100]), 48)[0],
                               np.r_[prep.scaled[76:100], prep.scaled[76:100]])


def test_persistence_is_exact_on_a_constant_and_repeats_the_last_hour():
    data = np.full(200, 0.4)
    fcst = fc.persistence(data, np.array([50, 120]), 24)
    assert fcst.shape == (2, 24) and np.all(fcst == 0.4)
    ramp = np.arange(100.0)
    np.testing.assert_array_equal(fc.persistence(ramp, np.array([30]), 3), [[29.0, 29.0, 29.0]])
    assert fc.scores(fcst, np.full((2, 24), 0.4)) == {"mse": 0.0, "mae": 0.0, "windows": 2}


def test_arima_forecasts_from_every_origin_equal_statsmodels_forecast():
    import warnings

    from statsmodels.tsa.statespace.sarimax import SARIMAX

    rng = np.random.default_rng(0)
    t = np.arange(700)
    data = 0.5 + 0.3 * np.sin(2 * np.pi * t / 24) + 0.05 * rng.standard_normal(700)
    origins = np.array([560, 600, 650, 676])
    res = fc.arima_forecasts(data, 520, origins, 24, (2, 0, 1), (0, 0, 0, 0), fit_hours=None, maxiter=20)
    assert res.forecasts.shape == (4, 24) and res.label == "ARIMA(2,0,1)" and res.fit_hours == 520
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the reference: statsmodels' own forecast with the same parameters (filtered, not re-fitted)
        fitted = SARIMAX(data[:520], order=(2, 0, 1), trend="c").filter(np.array(list(res.params.values())))
        for row, origin in zip(res.forecasts, origins):
            # only the hours before the origin are used, with the parameters fixed
            np.testing.assert_allclose(row, fitted.apply(data[:origin]).forecast(24), atol=1e-9)


def test_seasonal_arima_from_every_origin_equals_statsmodels_forecast():
    import warnings

    from statsmodels.tsa.statespace.sarimax import SARIMAX

    rng = np.random.default_rng(1)
    t = np.arange(400)
    data = 0.5 + 0.3 * np.sin(2 * np.pi * t / 24) + 0.05 * rng.standard_normal(400)
    origins = np.array([330, 376])
    res = fc.arima_forecasts(data, 300, origins, 24, (1, 0, 0), (0, 1, 1, 24), fit_hours=150, maxiter=10)
    assert res.label == "SARIMA(1,0,0)(0,1,1)24" and res.fit_hours == 150  # the last 150 h of the training part
    # with a daily differencing the forecasts follow the cycle: far better than the series' spread
    assert fc.scores(res.forecasts, np.stack([data[o:o + 24] for o in origins]))["mse"] < 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = SARIMAX(data[150:300], order=(1, 0, 0), seasonal_order=(0, 1, 1, 24)).filter(
            np.array(list(res.params.values())))
        for row, origin in zip(res.forecasts, origins):
            np.testing.assert_allclose(row, fitted.apply(data[150:origin]).forecast(24), atol=1e-9)


# ----------------------------------------------------------------------------- cleaning

def test_duplicates_short_gaps_and_report():
    times = list(pd.date_range("2020-01-01", periods=300, freq="h"))
    values = list(np.arange(300.0))
    # the UCI pattern: an hour repeated (one row per weather condition), same value
    times.insert(10, times[10])
    values.insert(10, values[10])
    df = frame(times, values)
    df = df.drop(index=[101, 102, 103]).reset_index(drop=True)  # a 3-hour gap: hours 100, 101, 102
    out = fc.clean_hourly(df, "date_time", "traffic_volume", max_gap=6)
    assert out.report.duplicate_rows == 1 and out.report.conflicting_duplicates == 0
    assert out.report.missing_hours == 3 and out.report.short_gaps == 1 and out.report.hours_interpolated == 3
    assert len(out.series) == 300 and out.series.index.freq == "h"
    np.testing.assert_allclose(out.series.to_numpy(), np.arange(300.0))  # linear interpolation of a ramp is exact
    text = " ".join(out.report.lines())
    assert "repeat a timestamp" in text and "3 hours" in text


def test_conflicting_duplicates_are_averaged_and_unsorted_rows_sorted():
    times = list(pd.date_range("2020-01-01", periods=250, freq="h"))
    df = frame(times[::-1] + [times[5]], list(np.ones(250)) + [3.0])
    out = fc.clean_hourly(df, "date_time", "traffic_volume")
    assert out.report.unsorted and out.report.conflicting_duplicates == 1
    assert out.series.iloc[5] == 2.0


def test_long_gaps_keep_the_longest_clean_stretch_or_are_refused():
    times = pd.date_range("2020-01-01", periods=1000, freq="h")
    keep = np.ones(1000, dtype=bool)
    keep[300:320] = False  # 20 h gap
    keep[700:702] = False  # 2 h gap: interpolated
    df = frame(times[keep], np.arange(1000.0)[keep])
    out = fc.clean_hourly(df, "date_time", "traffic_volume", max_gap=6, policy="longest")
    assert out.series.index[0] == times[320] and out.series.index[-1] == times[999]
    assert out.report.hours_used == 680 and out.report.hours_dropped == 320
    assert out.report.long_gaps == [(times[300], times[319], 20)] and out.report.hours_interpolated == 2
    assert "longest stretch" in " ".join(out.report.lines())
    with pytest.raises(ValueError, match=r"longer than 6 h \(longest: 20 h from 2020-01-13 12:00"):
        fc.clean_hourly(df, "date_time", "traffic_volume", max_gap=6, policy="refuse")
    # allowing longer gaps interpolates it instead
    assert len(fc.clean_hourly(df, "date_time", "traffic_volume", max_gap=24, policy="refuse").series) == 1000


def test_bad_tables_get_messages_a_learner_can_act_on():
    times = pd.date_range("2020-01-01", periods=300, freq="h")
    values = [str(v) for v in range(300)]
    values[4] = "n/a"
    values[9] = "lots"
    with pytest.raises(ValueError, match=r"must hold numbers.*'n/a', 'lots'.*file lines \[6, 11\]"):
        fc.clean_hourly(frame(times, values), "date_time", "traffic_volume")
    bad_t = [str(t) for t in times]
    bad_t[3] = "yesterday-ish"
    with pytest.raises(ValueError, match="not dates and times.*yesterday-ish.*file lines \\[5\\]"):
        fc.clean_hourly(pd.DataFrame({"date_time": bad_t, "v": range(300)}), "date_time", "v")
    with pytest.raises(ValueError, match="not hourly"):
        fc.clean_hourly(frame(pd.date_range("2020-01-01", periods=300, freq="D"), range(300)),
                        "date_time", "traffic_volume")
    with pytest.raises(ValueError, match="holds numbers, not dates"):
        fc.clean_hourly(pd.DataFrame({"a": range(300), "b": range(300)}), "a", "b")
    with pytest.raises(ValueError, match="no column named 'flow'"):
        fc.clean_hourly(frame(times, range(300)), "date_time", "flow")
    with pytest.raises(ValueError, match="at least 200"):
        fc.clean_hourly(frame(times[:150], range(150)), "date_time", "traffic_volume")


def test_pems_style_five_minute_export_is_detected_and_aggregated():
    times = pd.date_range("2018-01-01", periods=12 * 250, freq="5min")
    df = pd.DataFrame({"5 Minutes": times.strftime("%m/%d/%Y %H:%M"), "Flow (Veh/5 Minutes)": np.full(len(times), 10),
                       "# Lane Points": 4, "% Observed": 100})
    assert fc.detect_columns(df) == ("5 Minutes", "Flow (Veh/5 Minutes)")
    out = fc.clean_hourly(df, "5 Minutes", "Flow (Veh/5 Minutes)", aggregation="sum")
    assert len(out.series) == 250 and np.all(out.series == 120.0)  # 12 five-minute counts per hour
    assert out.report.readings_per_hour == pytest.approx(12.0)
    uci = pd.DataFrame({"holiday": None, "temp": 280.0, "weather_main": "Clouds",
                        "date_time": ["2012-10-02 09:00:00"], "traffic_volume": [5545]})
    assert fc.detect_columns(uci) == ("date_time", "traffic_volume")
    assert fc.detect_columns(pd.DataFrame({"when": ["2020-01-01 00:00"], "x": [1.0]})) == ("when", "x")


# ----------------------------------------------------------------------------- loading

def test_loader_uses_the_shared_traffic_file(monkeypatch):
    folder = shared_data("traffic")
    monkeypatch.setenv("DNN2_DATA_DIR", str(folder.parent))  # the file sits in DNN2_DATA_DIR/traffic/
    loaded = fc.load_traffic()
    p = loaded.provenance
    assert p.source == "DNN2_DATA_DIR" and p.complete and not p.stand_in
    assert p.location.endswith("traffic/Metro_Interstate_Traffic_Volume.csv.gz")
    assert len(loaded.data.frame) == 48204 and loaded.data.value_col == "traffic_volume"
    out = fc.series_from_table(loaded.data)  # defaults: interpolate <= 6 h, keep the longest clean stretch
    r = out.report
    assert r.duplicate_rows == 48204 - 40575
    assert (r.start, r.end, r.hours_used) == (pd.Timestamp("2017-04-13 10:00"), pd.Timestamp("2018-09-30 23:00"), 12854)
    assert out.series.notna().all() and out.series.min() >= 0 and out.series.max() <= 7280


def test_offline_default_is_a_labelled_stand_in(no_local_data):
    loaded = fc.load_traffic()
    p = loaded.provenance
    assert p.source == "embedded" and p.stand_in and not p.complete
    assert "electricity demand" in p.detail and "NOT traffic" in p.detail
    assert any("DNN2_OFFLINE" in n for n in loaded.notes)
    out = fc.series_from_table(loaded.data)
    assert len(loaded.data.frame) == 4032 and len(out.series) == 2016
    assert out.series.iloc[0] == pytest.approx((22262 + 21756) / 2)  # half-hours averaged to hours
    assert out.series.index[0] == pd.Timestamp("2000-06-05 00:00")


# ----------------------------------------------------------------------------- the LSTM cell

@pytest.mark.parametrize("layout, extras", [("sequence", ()), ("course", ("hour of day",))])
def test_lstm_gates_by_hand_equal_keras(layout, extras):
    import keras

    rng = np.random.default_rng(3)
    t = np.arange(400)
    prep = fc.prepare(hourly(np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(400)), layout=layout,
                      extras=extras)
    keras.utils.set_random_seed(0)
    model = fc.build_forecaster("LSTM", prep.input_shape)
    model.fit(prep.X_train, prep.Y_train, epochs=1, batch_size=32, verbose=0)  # trained weights, not the init
    window = prep.X_val[7]
    steps = fc.lstm_gates(model, window)
    assert len(steps) == prep.input_shape[0]
    layer = fc.lstm_layer(model)
    keras_y = np.asarray(layer(window[None]))[0]
    np.testing.assert_allclose(steps[-1].y, keras_y, atol=1e-5)
    np.testing.assert_allclose(fc.dense_head(model, steps[-1].y), fc.predict(model, window[None])[0], atol=1e-5)
    for k, s in enumerate(steps):  # the course's equations hold at every step
        np.testing.assert_allclose(s.cell, s.forget * s.c_prev + s.input * s.candidate)
        np.testing.assert_allclose(s.y, s.output * np.tanh(s.cell))
        assert np.all((s.forget > 0) & (s.forget < 1)) and np.all(np.abs(s.candidate) < 1)
        if k:
            np.testing.assert_array_equal(s.c_prev, steps[k - 1].cell)
    assert not np.any(steps[0].c_prev)  # the state starts at zero
    table = fc.gates_frame(steps, len(steps) - 1)
    assert list(table.columns[3:6]) == ["σ1 forget", "σ2 input", "U candidate"] and len(table) == 16
    fig = fc.gates_figure(steps)
    assert len(fig.data) == 6
    if layout == "course":  # one step: six labelled strips stacked, each one row of 16 units with values
        assert [np.shape(t.z) for t in fig.data] == [(1, 16)] * 6 and fig.data[0].texttemplate
        assert fig.layout.height == 6 * 80 + 60
    else:  # the true sequence: rows = time steps
        assert np.shape(fig.data[0].z) == (len(steps), 16) and fig.layout.height == min(560, 140 + 26 * len(steps))


def test_ranking_words_say_what_is_true():
    ref = {"Dense": 0.0140, "SimpleRNN": 0.0139, "LSTM": 0.0123}  # the 500-epoch reference: the course's order
    short = {"Dense": 0.016, "SimpleRNN": 0.020, "LSTM": 0.022}   # 10 epochs: dense first
    words = fc.ranking_words(short, 10, ref, 500)
    assert "**Dense < SimpleRNN < LSTM**" in words and "**LSTM < SimpleRNN < Dense** (the course's order)" in words
    assert "The order is reversed" in words and "10 epochs are too few" in words
    assert "the same order as the 500-epoch reference run and the course" in fc.ranking_words(ref, 500, ref, 500)
    frame = fc.ranking_frame(short, 10, ref, 500).set_index("network")
    assert frame["this run, 10 epochs: rank"].to_dict() == {"Dense": 1, "SimpleRNN": 2, "LSTM": 3}
    assert frame["reference, 500 epochs: rank"].to_dict() == {"Dense": 3, "SimpleRNN": 2, "LSTM": 1}
    assert frame["the course (its freeway), 500 epochs: val MSE"].to_dict() == fc.COURSE_MSE
    assert fc.networks_mse({"LSTM": {"val_loss": 0.5}, "Dense": {"val_mse": 0.25, "val_loss": 9}}) == {
        "Dense": 0.25, "LSTM": 0.5}


def test_cleaning_report_as_a_table():
    t = pd.date_range("2020-01-01", periods=400, freq="h")
    keep = np.r_[0:100, 103:200, 260:400]
    frame = pd.DataFrame({"t": t[keep].astype(str), "v": np.arange(len(keep), dtype=float)})
    cleaned = fc.clean_hourly(frame, "t", "v", max_gap=6, policy="longest")
    table = cleaned.report.table().set_index("step")
    assert list(table.columns) == ["how many", "what was done"]
    assert table.loc["short gaps (at most 6 h)", "how many"] == "1"
    assert table.loc["long gaps (over 6 h)", "how many"] == "1"
    assert table.loc["hours used", "how many"] == f"{len(cleaned.series):,}"
