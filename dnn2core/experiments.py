"""What each experiment trains, from its settings: one function per experiment.

Why here and not in the pages: the page, the reference command (``dnn2core.reference``) and the
tests must build exactly the same runs from the same settings, or a stored run would not be what
its key says. Each function takes the loaded data and the page's settings (URL names) and returns
the ``ModelRun`` list of one job; each experiment has a version, bumped when its meaning changes
(stored runs of an older version are then never shown for the new one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Mapping

import numpy as np

from dnn2core import digits, models
from dnn2core.data import Loaded, Mnist
from dnn2core.training import Budget, BuiltRuns, ModelRun, PlannedRun

__all__ = ["SHIFTS", "SHIFT_DIGITS", "housing_fingerprint", "mnist_fingerprint", "sequences_fingerprint", "sequences_prepare",
           "sequences_series",
           "HOUSING_VERSION", "MNIST_VERSION", "SEQUENCES_VERSION", "sequences_budget", "sequences_runs",
           "sequences_settings", "housing_budget", "housing_prepare", "housing_runs", "housing_settings",
           "mnist_budget", "mnist_here", "mnist_runs", "mnist_settings", "MnistRecipe", "BASELINES_RUN",
           "housing_baseline_runs", "sequences_classical_runs", "sequences_classical_settings"]

MNIST_VERSION = 1
# Batches per Python step (see ModelRun.steps_per_execution): small models spend most of a step in
# Keras' Python loop, so they run several; the CNN is compute-bound on a CPU and gains little.
STEPS_PER_EXECUTION = {"Dense": 32, "CNN": 4, "SimpleRNN": 32, "LSTM": 32, "Network": 32}


def mnist_fingerprint(mnist: Mnist) -> str:
    """The digits' content hash: the same MNIST anywhere gives the same run keys."""
    from dnn2core.runs import data_fingerprint

    return data_fingerprint(mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test)


@lru_cache(maxsize=2)
def mnist_here(where: str) -> tuple[Loaded[Mnist], str]:
    """MNIST and its fingerprint, loaded once per process for the data folder ``where``: the page,
    and every job a worker trains, share one copy (55 MB) instead of loading it per job."""
    from dnn2core import data

    loaded = data.load_mnist()
    for array in (loaded.data.x_train, loaded.data.y_train, loaded.data.x_test, loaded.data.y_test):
        array.flags.writeable = False  # shared by every session and job of this process
    return loaded, mnist_fingerprint(loaded.data)


def mnist_settings(*, models: list[str], api: str, epochs: int, batch: int, opt: str, lr: float, n: int, val: float,
                   seed: int) -> dict[str, Any]:
    """The MNIST page's result-changing settings, by their URL names."""
    return {"models": list(models), "api": api, "epochs": int(epochs), "batch": int(batch), "opt": opt,
            "lr": float(lr), "n": int(n), "val": float(val), "seed": int(seed)}


def mnist_budget() -> Budget:
    return Budget.from_env(max_epochs=50, max_samples=5_000_000)


SHIFTS = tuple(range(9))  # pixels right and up in the "move the digits" tab
SHIFT_DIGITS = 1000  # test digits that tab moves


def _mnist_evaluate(model, x_test: np.ndarray, y_test: np.ndarray, kind: str) -> dict:
    """Test accuracy and loss, the test probabilities the Evaluate and Digit tabs draw from, and the
    accuracy of the moved digits: computed where the model trained, so that opening a finished run
    never runs the model in the web process (every new model there costs TensorFlow memory for good)."""
    from dnn2core import evaluation

    probs = np.asarray(model.predict(digits.as_input(x_test, kind), batch_size=512, verbose=0), dtype=np.float32)
    picked = np.clip(probs[np.arange(len(y_test)), y_test], 1e-7, 1.0)

    def predict(x):
        return evaluation.predict_probs(model, x, kind)

    n = min(SHIFT_DIGITS, len(y_test))
    shifted = evaluation.accuracy_vs_shift(predict, x_test[:n], y_test[:n], SHIFTS)
    corner = float((predict(digits.to_top_right(x_test[:n])).argmax(1) == y_test[:n]).mean())
    return {"test_accuracy": float((probs.argmax(axis=1) == y_test).mean()),
            "test_loss": float(-np.log(picked).mean()), "test_probs": probs,
            "shift_accuracy": np.asarray(shifted, dtype=np.float32), "corner_accuracy": corner}


def mnist_runs(mnist: Mnist, settings: Mapping[str, Any]) -> list[ModelRun]:
    """The course's dense network and/or CNN on a seeded subset, validated on a split of it."""
    split = digits.prepare(mnist, int(settings["n"]), int(settings["seed"]))
    builders = {"Dense": models.build_mnist_dense, "CNN": models.build_mnist_cnn}
    runs = []
    for name in settings["models"]:
        kind = name.lower()
        runs.append(ModelRun(
            name, partial(builders[name], settings["api"], settings["opt"], float(settings["lr"])),
            dict(x=digits.as_input(split.x_train, kind), y=split.y_train, epochs=int(settings["epochs"]),
                 batch_size=int(settings["batch"]), validation_split=float(settings["val"]), shuffle=True),
            evaluate=partial(_mnist_evaluate, x_test=split.x_test, y_test=split.y_test, kind=kind),
            steps_per_execution=STEPS_PER_EXECUTION[name]))
    return runs


@dataclass(frozen=True)
class MnistRecipe:
    """An MNIST job as a ``training.RunRecipe``: the settings and the digits' fingerprint, a few
    hundred bytes. Why: the runs themselves carry the digits (63 MB pickled for the default Dense +
    CNN on 5,000 digits, with the 10,000 test digits), which the web process used to prepare, pickle
    and pipe to the worker on every Start; with a class pressing Start together, that work starved
    the web process and delayed every job's start by seconds. The worker loads MNIST once
    (``mnist_here``) and prepares the split itself, inside the job's slot."""

    settings: dict[str, Any] = field(hash=False)
    fingerprint: str  # the page's digits: the worker refuses to train other ones under this key

    def planned(self) -> list[PlannedRun]:
        return [PlannedRun(name, int(self.settings["epochs"])) for name in self.settings["models"]]

    def build(self) -> BuiltRuns:
        from dnn2core import data

        loaded, fingerprint = mnist_here(str(data.data_dir()))
        if fingerprint != self.fingerprint:
            raise ValueError("The training process found other MNIST digits than this page "
                             f"({loaded.provenance.badge}): reload the page and press Start again.")
        return BuiltRuns(mnist_runs(loaded.data, self.settings))


# --------------------------------------------------------------------------------------------
# House prices (Video 7)
# --------------------------------------------------------------------------------------------

HOUSING_VERSION = 2  # 2: fed from a cached tf.data pipeline (5,000 epochs in minutes; other shuffles)


def housing_settings(*, epochs: int, batch: int, seed: int, noid: bool, std: bool, log: bool, stop: bool,
                     patience: int) -> dict[str, Any]:
    """The house-price page's result-changing settings (patience only counts with early stopping)."""
    out = {"epochs": int(epochs), "batch": int(batch), "seed": int(seed), "noid": bool(noid), "std": bool(std),
           "log": bool(log), "stop": bool(stop)}
    if stop:
        out["patience"] = int(patience)
    return out


def housing_fingerprint(df) -> str:
    from dnn2core.runs import data_fingerprint

    return data_fingerprint(df)


def housing_budget() -> Budget:
    return Budget.from_env(max_epochs=5000, max_samples=50_000_000)


def housing_prepare(df, settings: Mapping[str, Any]):
    """The course's split (1,000 train, the rest dev) and the chosen feature/target treatment."""
    from dnn2core import regression as reg

    n_train = reg.default_train_rows(len(reg.numeric_complete(df)))
    train, dev = reg.course_split(df, int(settings["seed"]), n_train=n_train, drop_id=bool(settings["noid"]))
    return train, dev, reg.prepare(train, dev, standardise=bool(settings["std"]), log_target=bool(settings["log"]))


def _housing_evaluate(model, prep) -> dict:
    from dnn2core import regression as reg

    predicted = np.asarray(prep.to_dollars(model.predict(prep.x_dev, verbose=0, batch_size=1024)), dtype=np.float64)
    errors = reg.dollar_errors(prep.price_dev, predicted)
    return {"dev_mae": errors["mae"], "dev_rmse": errors["rmse"], "dev_predictions": predicted.reshape(-1)}


def housing_runs(prep, settings: Mapping[str, Any]) -> list[ModelRun]:
    """The course's 4 x Dense(64) regressor on the prepared split."""
    from dnn2core import regression as reg

    patience = int(settings["patience"]) if settings.get("stop") else None
    return [ModelRun("Network", partial(reg.build_house_regressor, prep.n_features, log_target=bool(settings["log"]),
                                        target_offset=prep.target_offset),
                     reg.fit_kwargs(prep, int(settings["epochs"]), int(settings["batch"]), stop_patience=patience),
                     evaluate=partial(_housing_evaluate, prep=prep), steps_per_execution=STEPS_PER_EXECUTION["Network"],
                     cached_data=True)]


BASELINES_RUN = "Five methods"


def housing_baseline_runs(prep, seed: int, folds: int) -> list[ModelRun]:
    """The five scikit-learn methods on the same split and toggles, as one task run (a worker fits them)."""
    from dnn2core import regression as reg

    return [ModelRun(BASELINES_RUN, None, {}, task=reg.BaselinesTask(prep, int(seed), int(folds)), unit="method")]


# --------------------------------------------------------------------------------------------
# Forecasting traffic (Video 6)
# --------------------------------------------------------------------------------------------

SEQUENCES_VERSION = 1


def sequences_settings(*, gap: int, policy: str, agg: str, hours: int, h: int, layout: str, extras: list[str],
                       models: list[str], epochs: int, seed: int) -> dict[str, Any]:
    """The forecasting page's result-changing settings (cleaning, windows, networks, training)."""
    return {"gap": int(gap), "policy": policy, "agg": agg, "hours": int(hours), "h": int(h), "layout": layout,
            "extras": list(extras), "models": list(models), "epochs": int(epochs), "seed": int(seed)}


def sequences_fingerprint(series) -> str:
    """The cleaned hourly series' content hash (timestamps and values)."""
    from dnn2core.runs import data_fingerprint

    return data_fingerprint(np.asarray(series.index.asi8), series.to_numpy())


def sequences_series(table, settings: Mapping[str, Any]):
    """The built-in series cleaned as the settings say (gaps, policy, aggregation)."""
    from dnn2core import forecasting as fc

    return fc.series_from_table(table, max_gap=int(settings["gap"]), policy=settings["policy"],
                                aggregation=settings["agg"]).series


def sequences_prepare(series, settings: Mapping[str, Any]):
    """The course's windows (h in, 24 out), scaled on the training part, in the chosen layout."""
    from dnn2core import forecasting as fc

    return fc.prepare(fc.take_last(series, int(settings["hours"])), h=int(settings["h"]), layout=settings["layout"],
                      extras=tuple(settings["extras"]))


def sequences_budget() -> Budget:
    from dnn2core import forecasting as fc

    return Budget.from_env(max_epochs=fc.COURSE_EPOCHS, max_samples=20_000_000)


def _sequences_evaluate(model, X: np.ndarray, Y: np.ndarray) -> dict:
    from dnn2core import forecasting as fc

    predicted = np.asarray(fc.predict(model, X), dtype=np.float32)
    s = fc.scores(predicted, Y)
    return {"val_mse": s["mse"], "val_mae": s["mae"], "val_forecasts": predicted}


CLASSICAL_KEYS = ("gap", "policy", "agg", "hours", "h", "layout", "extras")  # what the classical model's fit reads


def sequences_classical_settings(settings: Mapping[str, Any], choice: str) -> dict[str, Any]:
    """The classical model's run settings: the series and windows it is scored on, and which model
    (not the networks, epochs or seed: it is the same fit for all of them)."""
    return {"part": "classical", "model": choice, **{k: settings[k] for k in CLASSICAL_KEYS}}


def sequences_classical_runs(prep, choice: str) -> list[ModelRun]:
    """The (S)ARIMA fit on the training part and its forecasts from every validation origin, as a task run."""
    from dnn2core import forecasting as fc

    task = fc.ArimaTask(prep.scaled, int(prep.fit_end), prep.origins_val, int(prep.f), choice)
    return [ModelRun(choice, None, {}, task=task, unit="fit")]


def sequences_runs(prep, settings: Mapping[str, Any]) -> list[ModelRun]:
    """Dense, SimpleRNN and/or LSTM (16 units) on the course's windows, MSE loss, batch 32."""
    from dnn2core import forecasting as fc

    return [ModelRun(kind, partial(fc.build_forecaster, kind, prep.input_shape, prep.f),
                     dict(x=prep.X_train, y=prep.Y_train, epochs=int(settings["epochs"]), batch_size=fc.BATCH_SIZE,
                          validation_data=(prep.X_val, prep.Y_val), shuffle=True),
                     evaluate=partial(_sequences_evaluate, X=prep.X_val, Y=prep.Y_val),
                     steps_per_execution=STEPS_PER_EXECUTION[kind])
            for kind in settings["models"]]
