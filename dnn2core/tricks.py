"""The course's "Tricks of the Trade", each as a one-minute experiment on MNIST digits.

1. Shuffling: a network trained on digits sorted by class (0s, then 1s, ...) forgets earlier
   classes while it fits the later ones; the same network on shuffled digits does not.
2. Early stopping: watch the validation loss turn up, stop at its lowest point and keep
   (``restore_best_weights``) the weights of that epoch, checked by re-evaluating them.
3. Prior class probabilities: with a rare class the network barely predicts it; subsampling,
   duplication, class weights and a moved decision threshold each trade precision for recall.
4. Divide and conquer: a hierarchy of classes, a coarse net and one net per group
   (``dnn2core.hierarchy``; its network settings are here, in ``net_settings``).

Everything here is plain numpy except the model builders and run factories (Keras imported
lazily, inside functions). Pages only wire widgets to these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dnn2core.style import digit_axis, model_color

from dnn2core import evaluation
from dnn2core.data import Mnist
from dnn2core.training import ModelRun

if TYPE_CHECKING:  # pragma: no cover
    import keras

N_CLASSES = 10
FULL_BATCH = 100_000  # a batch-size option meaning "the whole training set in one batch"


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DigitData:
    """Flattened digits scaled to [0, 1]: what the small dense network takes."""
    x_train: np.ndarray  # (n, 784) float32
    y_train: np.ndarray  # (n,) int64
    x_val: np.ndarray
    y_val: np.ndarray


# Batches per Python step: these small dense nets spend most of a step in Keras' Python loop.
STEPS_PER_EXECUTION = 32


def flatten(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float32).reshape(len(x), -1) / 255.0).astype(np.float32)


def digit_data(mnist: Mnist, n_train: int, n_val: int = 1000, seed: int = 0) -> DigitData:
    """A random n_train-digit training subset and the first n_val test digits as validation."""
    n_train = int(min(max(n_train, N_CLASSES), len(mnist.y_train)))
    n_val = int(min(max(n_val, N_CLASSES), len(mnist.y_test)))
    idx = np.random.default_rng(seed).permutation(len(mnist.y_train))[:n_train]
    return DigitData(flatten(mnist.x_train[idx]), mnist.y_train[idx].astype(np.int64),
                     flatten(mnist.x_test[:n_val]), mnist.y_test[:n_val].astype(np.int64))


def class_order(y: np.ndarray) -> np.ndarray:
    """Indices putting all 0s first, then all 1s, ... (stable within a class): the page needs only
    these to draw the order, not a sorted copy of the images."""
    return np.argsort(y, kind="stable")


def shuffled_order(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(int(n))


def order_by_class(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All 0s, then all 1s, ...: the worst order for stochastic learning (stable within a class)."""
    order = class_order(y)
    return x[order], y[order]


def shuffle_together(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    order = shuffled_order(len(y), seed)
    return x[order], y[order]


def class_counts(y: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    return np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)


def _check_class(rare_class: int, n_classes: int = N_CLASSES) -> int:
    if not 0 <= int(rare_class) < n_classes:
        raise ValueError(f"The rare class must be a digit from 0 to {n_classes - 1}, got {rare_class}.")
    return int(rare_class)


def make_imbalanced(x: np.ndarray, y: np.ndarray, rare_class: int, keep_fraction: float,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Keep only keep_fraction of one class (at least one example); every other class is untouched."""
    rare_class = _check_class(rare_class)
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}.")
    rare = np.flatnonzero(y == rare_class)
    if len(rare) == 0:
        raise ValueError(f"There is no example of class {rare_class} to keep.")
    n_keep = max(1, int(round(keep_fraction * len(rare))))
    kept = np.random.default_rng(seed).choice(rare, size=n_keep, replace=False)
    mask = y != rare_class
    mask[kept] = True
    return x[mask], y[mask]


def subsample(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Remove examples of the frequent classes at random until every class has the rarest one's count.
    Equal priors, but most of the data is thrown away (the course's caveat: lost information)."""
    counts = class_counts(y)
    present = np.flatnonzero(counts)
    target = counts[present].min()
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.choice(np.flatnonzero(y == c), size=target, replace=False) for c in present])
    keep = rng.permutation(keep)
    return x[keep], y[keep]


def oversample(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Duplicate random examples of the rarer classes until every class has the commonest one's count.
    Equal priors and no data lost, but the rare examples are seen many times (they can be memorised)."""
    counts = class_counts(y)
    present = np.flatnonzero(counts)
    target = counts[present].max()
    rng = np.random.default_rng(seed)
    parts = []
    for c in present:
        idx = np.flatnonzero(y == c)
        extra = rng.choice(idx, size=target - len(idx), replace=True) if len(idx) < target else idx[:0]
        parts.append(np.concatenate([idx, extra]))
    keep = rng.permutation(np.concatenate(parts))
    return x[keep], y[keep]


def class_weights(y: np.ndarray) -> dict[int, float]:
    """Keras ``class_weight``: n / (classes x n_c), so every class carries the same total weight
    (scikit-learn's "balanced" rule). Classes absent from y get no entry."""
    counts = class_counts(y)
    present = np.flatnonzero(counts)
    n = counts.sum()
    return {int(c): float(n / (len(present) * counts[c])) for c in present}


def prior_factor(y: np.ndarray, cls: int) -> float:
    """How much rarer cls was in training than the other classes on average: the factor that
    turns its predicted probability into one for equal priors (Bayes: p(c|x) is proportional to
    p(x|c) p(c), so dividing out the training prior means multiplying by 1 / p(c))."""
    cls = _check_class(cls)
    counts = class_counts(y).astype(float)
    others = np.delete(counts, cls)
    others = others[others > 0]
    if counts[cls] == 0 or len(others) == 0:
        raise ValueError(f"Class {cls} and at least one other class must be present.")
    return float(others.mean() / counts[cls])


def adjust_threshold(probs: np.ndarray, cls: int, factor: float) -> np.ndarray:
    """Scale one class's probability by factor and renormalise: a moved decision threshold.
    No retraining; factor = prior_factor(...) corrects exactly for that class's training prior."""
    cls = _check_class(cls, probs.shape[1])
    if not factor > 0:
        raise ValueError(f"The factor must be positive, got {factor}.")
    out = np.array(probs, dtype=np.float64, copy=True)
    out[:, cls] *= factor
    return out / out.sum(axis=1, keepdims=True)


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = N_CLASSES) -> pd.DataFrame:
    """Precision, recall and support per class (precision is NaN for a class never predicted)."""
    cm = evaluation.confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), np.nan)
        recall = np.where(actual > 0, tp / np.maximum(actual, 1), np.nan)
    return pd.DataFrame({"class": np.arange(n_classes), "precision": precision, "recall": recall,
                         "support": actual})


def prior_summary(y_true: np.ndarray, predictions: dict[str, np.ndarray], rare_class: int,
                  train_sizes: dict[str, int] | None = None) -> pd.DataFrame:
    """One row per method: accuracy, the rare class's precision and recall, the mean recall."""
    rows = []
    for name, pred in predictions.items():
        rep = per_class_report(y_true, pred)
        rare = rep.iloc[rare_class]
        row = {"method": name, "accuracy": float(np.mean(pred == y_true)),
               f"precision of {rare_class}": float(rare["precision"]),
               f"recall of {rare_class}": float(rare["recall"]),
               "mean recall (all classes)": float(np.nanmean(rep["recall"]))}
        if train_sizes and name in train_sizes:
            row["training digits"] = train_sizes[name]
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the model


def build_small_dense(hidden: int = 64, optimizer: str = "sgd", learning_rate: float | None = 0.05,
                      n_inputs: int = 784, n_classes: int = N_CLASSES) -> "keras.Model":
    """784 -> Dense(hidden, relu) -> Dense(n_classes, softmax): small enough for one-minute experiments.
    ``n_classes`` below 10 is divide and conquer's coarse net (one output per group) or a group's own net."""
    import keras
    from keras import layers

    from dnn2core.models import make_optimizer

    model = keras.Sequential([
        keras.Input(shape=(n_inputs,)),
        layers.Dense(int(hidden), activation="relu"),
        layers.Dense(int(n_classes), activation="softmax"),
    ], name=f"dense_{hidden}")
    model.compile(optimizer=make_optimizer(optimizer, learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _builder(hidden: int, optimizer: str, learning_rate: float | None) -> Callable[[], Any]:
    """The runs' build function, picklable (a partial of a module function): the runs train in a worker."""
    return partial(build_small_dense, int(hidden), optimizer, learning_rate)


def _batch(batch_size: int, n: int) -> int:
    return int(min(max(1, batch_size), n))


# ----------------------------------------------------------------------------- 1. shuffling


def shuffling_runs(data: DigitData, *, epochs: int, batch_size: int, hidden: int = 64, optimizer: str = "sgd",
                   learning_rate: float | None = 0.05, seed: int = 0,
                   with_keras_shuffle: bool = False) -> list[ModelRun]:
    """Same model, data and budget; only the order differs.

    The ordered run passes ``shuffle=False``: Keras' ``fit`` shuffles every epoch by default
    (``shuffle=True``), which would quietly undo the ordering. ``with_keras_shuffle`` adds that
    third run to show it. Validation uses separate digits, never ``validation_split`` (which takes
    the *last* rows: with ordered data, only 9s)."""
    xo, yo = order_by_class(data.x_train, data.y_train)
    xs, ys = shuffle_together(data.x_train, data.y_train, seed)
    bs = _batch(batch_size, len(yo))
    val = (data.x_val, data.y_val)
    build = _builder(hidden, optimizer, learning_rate)
    runs = [
        ModelRun("Ordered by class", build, dict(x=xo, y=yo, epochs=int(epochs), batch_size=bs,
                                                 validation_data=val, shuffle=False),
                 steps_per_execution=STEPS_PER_EXECUTION),
        ModelRun("Shuffled", build, dict(x=xs, y=ys, epochs=int(epochs), batch_size=bs,
                                         validation_data=val, shuffle=True),
                 steps_per_execution=STEPS_PER_EXECUTION),
    ]
    if with_keras_shuffle:
        runs.append(ModelRun("Ordered, fit(shuffle=True)", build,
                             dict(x=xo, y=yo, epochs=int(epochs), batch_size=bs, validation_data=val, shuffle=True),
                             steps_per_execution=STEPS_PER_EXECUTION))
    return runs


def last_batch_classes(y: np.ndarray, batch_size: int) -> list[int]:
    """Which classes the final batches of an epoch hold: what the network saw last."""
    tail = y[-min(len(y), max(batch_size, 1) * 3):]
    return sorted(set(int(v) for v in tail))


# ----------------------------------------------------------------------------- 2. early stopping


def early_stopping_callback(patience: int):
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(patience), restore_best_weights=True)


def early_stopping_runs(data: DigitData, *, max_epochs: int, patience: int, batch_size: int = 32,
                        hidden: int = 256, optimizer: str = "adam", learning_rate: float | None = 1e-3,
                        compare: bool = True) -> list[ModelRun]:
    """A network big enough to overfit a small training set, with early stopping; optionally the
    same network trained for every epoch, for comparison. Each run re-evaluates its final
    weights on the validation digits, so the page can show which weights were kept."""
    bs = _batch(batch_size, len(data.y_train))
    build = _builder(hidden, optimizer, learning_rate)

    evaluate = partial(_final_validation, x=data.x_val, y=data.y_val, batch_size=bs)
    base = dict(x=data.x_train, y=data.y_train, epochs=int(max_epochs), batch_size=bs,
                validation_data=(data.x_val, data.y_val), shuffle=True)
    runs = [ModelRun("Early stopping", build, dict(base, callbacks=[early_stopping_callback(patience)]),
                     evaluate=evaluate, steps_per_execution=STEPS_PER_EXECUTION)]
    if compare:
        runs.append(ModelRun("All epochs", build, dict(base), evaluate=evaluate,
                             steps_per_execution=STEPS_PER_EXECUTION))
    return runs


def _final_validation(model, *, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
    """The validation loss and accuracy of the weights a run ends with (early stopping restores its best)."""
    loss, acc = model.evaluate(x, y, batch_size=batch_size, verbose=0)
    return {"final_val_loss": float(loss), "final_val_accuracy": float(acc)}


def best_epoch(val_losses: Sequence[float]) -> int:
    """1-based epoch of the lowest validation loss (the first one on ties, as EarlyStopping keeps)."""
    if len(val_losses) == 0:
        raise ValueError("No validation losses recorded yet.")
    return int(np.argmin(np.asarray(val_losses, dtype=float))) + 1


def early_stopping_report(history: dict[str, list[float]], results: dict[str, float],
                          max_epochs: int) -> dict[str, Any]:
    """What early stopping did: best epoch, epochs run, val loss at the best and the last epoch,
    and the val loss of the weights the model actually holds now."""
    val = history.get("val_loss", [])
    best = best_epoch(val)
    return {"best_epoch": best, "epochs_run": len(val), "best_val_loss": float(val[best - 1]),
            "last_val_loss": float(val[-1]), "kept_val_loss": float(results.get("final_val_loss", np.nan)),
            "stopped_early": len(val) < int(max_epochs)}


def accuracy_noise(accuracy: float, n: int) -> float:
    """About two standard errors of the difference of two accuracies near ``accuracy``, each measured
    on the same ``n`` validation digits: differences smaller than this are noise."""
    p = min(max(float(accuracy), 1e-6), 1 - 1e-6)
    return 2.0 * float(np.sqrt(2.0 * p * (1 - p) / max(int(n), 1)))


def early_stopping_verdict(with_stop: dict[str, float], with_epochs: int, without: dict[str, float],
                           without_epochs: int, n_val: int) -> str:
    """The early-stopping experiment's result in words, from the two runs' final validation accuracy and
    loss (``final_val_accuracy``, ``final_val_loss``) and the epochs each trained: who won, whether by
    more than the noise of ``n_val`` digits, and what stopping saved."""
    acc_w, acc_o = float(with_stop["final_val_accuracy"]), float(without["final_val_accuracy"])
    loss_w, loss_o = float(with_stop["final_val_loss"]), float(without["final_val_loss"])
    diff = acc_w - acc_o
    noise = accuracy_noise((acc_w + acc_o) / 2, n_val)
    out = [f"**With early stopping: {acc_w:.1%}** validation accuracy after {with_epochs} epochs (validation loss "
           f"{loss_w:.3f}); **without: {acc_o:.1%}** after {without_epochs} (loss {loss_o:.3f})."]
    if abs(diff) < noise:
        out.append(f"The {abs(diff) * 100:.1f}-point difference is within the noise of {n_val:,} validation "
                   f"digits (about ±{noise * 100:.1f} points): here early stopping neither cost nor bought accuracy.")
    elif diff > 0:
        out.append(f"Early stopping wins by {diff * 100:.1f} points, more than the noise of {n_val:,} validation "
                   f"digits (about ±{noise * 100:.1f}): the extra epochs overfit.")
    else:
        out.append(f"Training every epoch wins by {-diff * 100:.1f} points, more than the noise of {n_val:,} "
                   f"validation digits (about ±{noise * 100:.1f}).")
    if loss_o > loss_w and acc_o >= acc_w:
        out.append("Note the two measures disagree: the longer run's validation *loss* is worse while its accuracy "
                   "is not. The loss also punishes over-confident wrong answers, which grow as a network overfits; "
                   "the accuracy only counts the answers. Early stopping watched the loss "
                   "(`monitor=\"val_loss\"`); watching `val_accuracy`, or more patience, would stop later.")
    if with_epochs < without_epochs:
        out.append(f"What it surely saved: {without_epochs - with_epochs} of {without_epochs} epochs "
                   f"({1 - with_epochs / without_epochs:.0%} of the training time).")
    return " ".join(out)


# ----------------------------------------------------------------------------- 3. prior probabilities

PRIOR_METHODS = ("No correction", "Subsampling", "Duplication", "Class weights", "Moved threshold")


@dataclass(frozen=True)
class PriorSetup:
    """The imbalanced training set and what each correction trains on."""
    rare_class: int
    x_imbalanced: np.ndarray
    y_imbalanced: np.ndarray
    sets: dict[str, tuple[np.ndarray, np.ndarray]]  # method -> (x, y) it trains on
    weights: dict[int, float]
    factor: float  # for the moved threshold

    def counts(self) -> pd.DataFrame:
        rows = {name: class_counts(y) for name, (_, y) in self.sets.items()}
        frame = pd.DataFrame(rows).T
        frame.columns = [str(c) for c in range(N_CLASSES)]
        frame.insert(0, "total", frame.sum(axis=1))
        return frame


def prior_setup(data: DigitData, rare_class: int, keep_fraction: float, seed: int = 0) -> PriorSetup:
    x, y = make_imbalanced(data.x_train, data.y_train, rare_class, keep_fraction, seed)
    sets = {"No correction": (x, y), "Subsampling": subsample(x, y, seed), "Duplication": oversample(x, y, seed),
            "Class weights": (x, y)}
    return PriorSetup(int(rare_class), x, y, sets, class_weights(y), prior_factor(y, rare_class))


def prior_runs(setup: PriorSetup, data: DigitData, *, epochs: int, batch_size: int = 32, hidden: int = 64,
               optimizer: str = "adam", learning_rate: float | None = 1e-3) -> list[ModelRun]:
    """Four trainings (the moved threshold reuses the uncorrected model: no training of its own)."""
    build = _builder(hidden, optimizer, learning_rate)
    runs = []
    for name, (x, y) in setup.sets.items():
        kwargs: dict[str, Any] = dict(x=x, y=y, epochs=int(epochs), batch_size=_batch(batch_size, len(y)),
                                      validation_data=(data.x_val, data.y_val), shuffle=True)
        if name == "Class weights":
            kwargs["class_weight"] = setup.weights
        runs.append(ModelRun(name, build, kwargs, steps_per_execution=STEPS_PER_EXECUTION))
    return runs


def prior_predictions(models: dict[str, Any], setup: PriorSetup, x: np.ndarray,
                      factor: float | None = None) -> dict[str, np.ndarray]:
    """Predicted classes of each trained model, plus the uncorrected model with a moved threshold."""
    out: dict[str, np.ndarray] = {}
    probs_none = None
    for name, model in models.items():
        probs = np.asarray(model.predict(x, batch_size=1024, verbose=0))
        out[name] = probs.argmax(axis=1)
        if name == "No correction":
            probs_none = probs
    if probs_none is not None:
        f = setup.factor if factor is None else factor
        out["Moved threshold"] = adjust_threshold(probs_none, setup.rare_class, f).argmax(axis=1)
    return out


# ----------------------------------------------------------------------------- each experiment's network


SMALL_HIDDEN = 64  # hidden units of the shuffling and rare-class networks
LEARNING_RATES = {"sgd": 0.05, "adam": 1e-3, "rmsprop": 1e-3}  # each optimizer's rate in these experiments
BATCH_SIZE = 32  # early stopping and rare classes (shuffling lets the learner choose)


@dataclass(frozen=True)
class NetSettings:
    """The small network and how it trains in one experiment's run."""

    hidden: int
    optimizer: str
    learning_rate: float
    batch_size: int
    epochs: int


def net_settings(part: str, settings: Mapping[str, Any]) -> NetSettings:
    """What the run of ``settings`` (as the Tricks page keys it) trains: read by the page to start
    the run and by its Keras code to show it, so the two cannot differ. Shuffling: 64 units, the
    chosen optimizer and batch (at most the set); early stopping: the chosen width and Adam rate,
    batch 32; rare classes: 64 units, Adam 1e-3, batch 32; divide and conquer: the chosen width,
    Adam 1e-3, batch 32 (every net of the hierarchy, and the flat net, alike)."""
    epochs = int(settings["epochs"])
    if part == "shuffle":
        return NetSettings(SMALL_HIDDEN, settings["opt"], LEARNING_RATES[settings["opt"]],
                           _batch(int(settings["batch"]), int(settings["n"])), epochs)
    if part == "stop":
        return NetSettings(int(settings["hidden"]), "adam", float(settings["lr"]), BATCH_SIZE, epochs)
    if part == "prior":
        return NetSettings(SMALL_HIDDEN, "adam", LEARNING_RATES["adam"], BATCH_SIZE, epochs)
    if part == "divide":
        return NetSettings(int(settings["hidden"]), "adam", LEARNING_RATES["adam"], BATCH_SIZE, epochs)
    raise ValueError(f"Unknown experiment {part!r}; choose shuffle, stop, prior or divide.")


# --- figures


def recall_figure(y_true: np.ndarray, predictions: dict[str, np.ndarray], rare_class: int,
                  height: int = 320) -> go.Figure:
    """Recall of every digit for each method; the rare class's bars are where the methods differ."""
    fig = go.Figure()
    for name, pred in predictions.items():
        rep = per_class_report(y_true, pred)
        fig.add_trace(go.Bar(x=[int(c) for c in rep["class"]], y=rep["recall"], name=name,
                             marker_color=model_color(name)))
    fig.add_vrect(x0=rare_class - 0.5, x1=rare_class + 0.5, fillcolor="orange", opacity=0.15, line_width=0)
    fig.update_layout(barmode="group", height=height, title=f"Recall per digit (rare class {rare_class} shaded)",
                      yaxis_title="recall", xaxis_title="digit", margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.25))
    digit_axis(fig, "x")
    return fig


def counts_figure(counts: pd.DataFrame, height: int = 300) -> go.Figure:
    """Training examples per digit under each method."""
    fig = go.Figure()
    digits = [c for c in counts.columns if c != "total"]
    for name, row in counts.iterrows():
        fig.add_trace(go.Bar(x=[int(d) for d in digits], y=[row[d] for d in digits], name=str(name),
                             marker_color=model_color(str(name))))
    fig.update_layout(barmode="group", height=height, title="Training digits per class",
                      xaxis_title="digit", yaxis_title="examples", margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.25))
    digit_axis(fig, "x")
    return fig


def order_figure(y_ordered: np.ndarray, y_shuffled: np.ndarray, height: int = 220) -> go.Figure:
    """The label sequence the network sees in one epoch: a staircase against noise."""
    fig = go.Figure()
    step = max(1, len(y_ordered) // 600)
    xs = np.arange(0, len(y_ordered), step)
    fig.add_trace(go.Scatter(x=xs, y=y_ordered[::step], mode="markers", name="ordered",
                             marker=dict(size=3, color=model_color("Ordered by class"))))
    fig.add_trace(go.Scatter(x=xs, y=y_shuffled[::step], mode="markers", name="shuffled",
                             marker=dict(size=3, opacity=0.5, color=model_color("Shuffled"))))
    fig.update_layout(height=height, title="Label of each training example, in the order fit() sees them",
                      xaxis_title="position in the epoch", yaxis_title="digit", margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.35))
    digit_axis(fig, "y")
    return fig
