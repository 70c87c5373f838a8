"""AppTest of the forecasting page: a tiny live run of the three networks, results against the baselines,
the LSTM gates, and uploads (auto-detected columns, bad files with clear messages)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import own_runs, run_registry, qp, open_page

pytestmark = pytest.mark.timeout(300)

FAST = {"arima": "ARIMA(2,0,1)"}  # the seasonal model is tested in test_forecasting; keep the page test quick


def page(**params) -> AppTest:
    return open_page("pages/sequences.py", **{**FAST, **params})

def text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def frame_with(at, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_tiny_run_shows_curves_results_forecasts_and_gates(no_local_data):
    at = page(hours="500", epochs="1", layout="sequence", seed="1")
    assert at.title[0].value == "Forecasting traffic"
    assert any("stand-in" in w.value and "electricity demand" in w.value for w in at.warning)
    cleaning = frame_with(at, "what was done").set_index("step")  # "What the cleaning did", as a table
    assert cleaning.loc["readings per hour", "what was done"] == "aggregated by their mean"
    assert {"rows read", "hours used"} <= set(cleaning.index)
    # the all-hours chart: a daily band with a range slider, the hourly line one click away
    import json
    overview = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                    if "day by day" in json.loads(c.proto.spec)["layout"]["title"]["text"])
    assert overview["layout"]["xaxis"]["rangeslider"]["visible"] is True
    assert [t.get("fill") for t in overview["data"]][:2] == [None, "tonexty"]
    assert overview["data"][-1]["visible"] == "legendonly"
    # the RNN theory: state and memory, the SimpleRNN equation, autoregression, the course's slip flagged
    assert any(r"y_k = \tanh(A_y\,y_{k-1} + A_x\,X_k + b)" in l.value for l in at.latex)
    assert "State and memory" in text(at) and "autoregression with a nonlinearity" in text(at)
    assert any("scikit-learn has no recurrent networks" in c.value for c in at.caption)
    # before a run: the reference run's numbers beside the course's, and no promise that 1 epoch ranks them
    ranking = frame_with(at, "reference, 500 epochs: val MSE").set_index("network")
    ref_run = next(r for r in run_registry().store.runs("sequences") if r.reference and r.settings["layout"] == "sequence")
    from dnn2core import forecasting as fc
    assert ranking["reference, 500 epochs: val MSE"].to_dict() == pytest.approx(fc.networks_mse(ref_run.metrics))
    assert ranking["reference, 500 epochs: rank"]["LSTM"] == 1  # the course's winner, after 500 epochs
    assert "the ranking is not settled" in " ".join(i.value for i in at.info)
    shapes = frame_with(at, "shape")
    assert shapes.set_index("array")["shape"].to_dict()["dataX"] == "(470, 6, 1)"
    params = frame_with(at, "params (Keras)").set_index("model")["params (Keras)"].to_dict()
    assert params == {"Dense": 520, "SimpleRNN": 696, "LSTM": 1560}
    # before training: the simple baselines are already in the table; the classical model is a job
    assert list(frame_with(at, "val MSE")["method"]) == ["Persistence", "Seasonal naive"]
    at.button(key="sequences.arima.start").click().run()
    [fit_key] = own_runs(at, "sequences.arima")
    fitted = run_registry().wait(fit_key, 120)
    assert fitted.state == "done" and fitted.settings["part"] == "classical", fitted.message
    at.run()
    assert list(frame_with(at, "val MSE")["method"]) == ["Persistence", "Seasonal naive", "ARIMA(2,0,1)"]
    assert any("ARIMA(2,0,1): parameters estimated on the last" in c.value for c in at.caption)

    at.button(key="sequences.start").click().run()
    [key] = own_runs(at, "sequences")
    run_registry().wait(key, 120)
    at.run()
    assert not at.exception, at.exception
    snap = run_registry().view(key).snapshot()
    assert snap.state == "done", snap.message
    assert "Finished" in text(at)
    results = frame_with(at, "val MSE").set_index("method")
    assert list(results.index) == ["Dense", "SimpleRNN", "LSTM", "Persistence", "Seasonal naive", "ARIMA(2,0,1)"]
    assert (results["windows scored"] == 70).all() and np.isfinite(results["val MSE"]).all()
    for name in ("Dense", "SimpleRNN", "LSTM"):  # the table scores exactly what Keras validated
        assert results.loc[name, "val MSE"] == pytest.approx(snap.models[name].history["val_loss"][-1], rel=1e-4)
    assert len(at.get("plotly_chart")) >= 8  # series x2, loss + mae curves, window, one-step, horizon, gates
    # this run's ranking, said as it is, beside the 500-epoch reference run's (its numbers, not hard-coded)
    from dnn2core import forecasting as fc
    mine = {n: snap.models[n].history["val_loss"][-1] for n in ("Dense", "SimpleRNN", "LSTM")}
    ref = next(r for r in run_registry().store.runs("sequences") if r.reference and r.settings["layout"] == "sequence")
    ref_mse = fc.networks_mse(ref.metrics)
    assert fc.ranking_words(fc.networks_mse(run_registry().store.get(key).metrics), 1, ref_mse, 500) in text(at)
    ranked = frame_with(at, "this run, 1 epoch: val MSE").set_index("network")
    assert ranked["this run, 1 epoch: val MSE"].to_dict() == pytest.approx(mine, rel=1e-4)
    assert ranked["reference, 500 epochs: val MSE"].to_dict() == pytest.approx(ref_mse)
    assert ranked["the course (its freeway), 500 epochs: rank"].to_dict() == {"LSTM": 1, "SimpleRNN": 2, "Dense": 3}
    gates = frame_with(at, "σ1 forget")
    assert len(gates) == 16 and gates["σ1 forget"].between(0, 1).all()
    diff = float(re.search(r"largest difference \*\*([0-9.e+-]+)\*\*", text(at)).group(1))
    assert diff < 1e-5
    code = " ".join(c.value for c in at.code)
    assert "epochs=1, batch_size=32" in code and "layers.LSTM(16)" in code and "reshape(-1, h, 1)" in code

    # settings never retrain; the course's 500 epochs are one click away and land in the link
    at.slider(key="sequences.window").set_value(5).run()
    stored = run_registry().store.runs("sequences", include_reference=False)
    assert qp(at, "window") == "5" and len(stored) == 2  # the networks' run and the classical fit
    assert sorted(r.settings.get("part", "networks") for r in stored) == ["classical", "networks"]
    at.button(key="sequences.course_epochs").click().run()
    assert at.select_slider(key="sequences.epochs").value == 500 and qp(at, "epochs") == "500"
    assert "epochs=500" in " ".join(c.value for c in at.code)
    assert len(run_registry().store.runs("sequences", include_reference=False)) == 2  # nothing new trained


def _csv(times, values, tcol="date_time", vcol="traffic_volume") -> bytes:
    return pd.DataFrame({tcol: times, vcol: values}).to_csv(index=False).encode()


def test_uploads_detect_columns_and_bad_files_get_messages(no_local_data):
    at = page(source="Upload a CSV", gap="3")
    assert any("Upload a CSV to continue" in i.value for i in at.info)

    # a PeMS-style 5-minute export: columns auto-detected, readings aggregated to hours
    t = pd.date_range("2018-01-01", periods=12 * 300, freq="5min")
    pems = pd.DataFrame({"5 Minutes": t.strftime("%m/%d/%Y %H:%M"), "Lane 1 Flow (Veh/5 Minutes)": 5,
                         "Flow (Veh/5 Minutes)": 10 + (t.hour.to_numpy() % 7), "% Observed": 100})
    at.file_uploader(key="sequences.upload").set_value(("pems.csv", pems.to_csv(index=False).encode(), "text/csv"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    selects = {s.label: s.value for s in at.selectbox}
    assert selects["Timestamp column"] == "5 Minutes" and selects["Value column"] == "Flow (Veh/5 Minutes)"
    cleaning = frame_with(at, "what was done").set_index("step")
    assert cleaning.loc["readings per hour", "how many"] == "about 12"
    assert cleaning.loc["hours used", "how many"] == "300"

    # text in the value column
    hours = pd.date_range("2020-01-01", periods=300, freq="h").astype(str)
    values = [str(v) for v in range(300)]
    values[7] = "closed"
    at.file_uploader(key="sequences.upload").set_value(("bad.csv", _csv(hours, values), "text/csv")).run()
    assert not at.exception
    assert any("must hold numbers" in e.value and "'closed'" in e.value and "[9]" in e.value for e in at.error)

    # not a CSV at all
    at.file_uploader(key="sequences.upload").set_value(("x.csv", b"\x00\x01\x02garbage\n\x00", "text/csv")).run()
    assert not at.exception and at.error

    # a long gap with the 'refuse' policy
    keep = np.r_[0:100, 130:400]
    at.radio(key="sequences.policy").set_value("refuse")
    at.file_uploader(key="sequences.upload").set_value(
        ("gap.csv", _csv(pd.date_range("2020-01-01", periods=400, freq="h")[keep].astype(str), keep), "text/csv"))
    at.run()
    assert not at.exception
    assert any("longer than 3 h" in e.value and "30 h from 2020-01-05 04:00" in e.value for e in at.error)
    assert qp(at, "source") == "Upload a CSV" and qp(at, "gap") == "3" and qp(at, "policy") == "refuse"  # nothing lost
