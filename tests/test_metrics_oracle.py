"""scikit-learn as the oracle of dnn2core's hand-written metrics, on seeded random labels.

dnn2core computes confusion matrices, per-class precision and recall, class weights and error
scores by hand in NumPy; scikit-learn computes the same quantities independently. Counts and
ratios of counts must agree exactly, NaN where a class was never predicted or never present
(scikit-learn's ``zero_division=np.nan``); means of errors to the last bits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (balanced_accuracy_score, confusion_matrix, mean_absolute_error, mean_squared_error,
                             precision_recall_fscore_support)
from sklearn.utils.class_weight import compute_class_weight

from dnn2core import evaluation
from dnn2core import forecasting as fc
from dnn2core import regression as reg
from dnn2core import tricks as tr

N_CLASSES = 10
LABELS = np.arange(N_CLASSES)


def labels(seed: int, case: str, n: int = 700) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred): mostly right, with a rare class, a class never predicted, or one never present."""
    rng = np.random.default_rng(seed)
    p = np.full(N_CLASSES, 1.0)
    if case == "rare class":
        p[3] = 0.02
    y_true = rng.choice(N_CLASSES, size=n, p=p / p.sum())
    if case == "absent class":
        y_true[y_true == 7] = 1
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, N_CLASSES, n))
    if case == "never predicted":
        y_pred[y_pred == 5] = 6
    return y_true.astype(np.int64), y_pred.astype(np.int64)


CASES = [(seed, case) for seed in (0, 1, 2) for case in ("random", "rare class", "never predicted", "absent class")]


@pytest.mark.parametrize("seed,case", CASES)
def test_confusion_matrix_and_per_class_accuracy_match_sklearn(seed, case):
    y_true, y_pred = labels(seed, case)
    cm = evaluation.confusion_matrix(y_true, y_pred, N_CLASSES)
    np.testing.assert_array_equal(cm, confusion_matrix(y_true, y_pred, labels=LABELS))
    _, recall, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=LABELS, zero_division=np.nan)
    np.testing.assert_array_equal(evaluation.per_class_accuracy(cm), recall)


@pytest.mark.parametrize("seed,case", CASES)
def test_per_class_report_matches_sklearn(seed, case):
    y_true, y_pred = labels(seed, case)
    report = tr.per_class_report(y_true, y_pred)
    precision, recall, _, support = precision_recall_fscore_support(y_true, y_pred, labels=LABELS,
                                                                    zero_division=np.nan)
    np.testing.assert_array_equal(report["class"], LABELS)
    np.testing.assert_array_equal(report["precision"], precision)
    np.testing.assert_array_equal(report["recall"], recall)
    np.testing.assert_array_equal(report["support"], support)
    if case == "never predicted":
        assert np.isnan(report["precision"][5]) and not np.isnan(report["recall"][5])
    if case == "absent class":
        assert np.isnan(report["recall"][7]) and report["support"][7] == 0


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # both drop such classes
@pytest.mark.parametrize("seed,case", CASES)
def test_prior_summary_accuracy_and_mean_recall_match_sklearn(seed, case):
    y_true, y_pred = labels(seed, case)
    row = tr.prior_summary(y_true, {"model": y_pred}, rare_class=3).iloc[0]
    assert row["accuracy"] == np.mean(y_true == y_pred)
    precision, recall, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=[3], zero_division=np.nan)
    np.testing.assert_array_equal([row["precision of 3"], row["recall of 3"]], [precision[0], recall[0]])
    # the mean recall over the classes that occur: scikit-learn's balanced accuracy
    assert row["mean recall (all classes)"] == pytest.approx(balanced_accuracy_score(y_true, y_pred), rel=1e-15)


@pytest.mark.parametrize("seed,keep", [(0, 0.05), (1, 0.2), (2, 1.0), (3, 0.01)])
def test_class_weights_match_sklearns_balanced_rule(seed, keep):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, 3000)
    _, y = tr.make_imbalanced(np.zeros((len(y), 1)), y, rare_class=seed % N_CLASSES, keep_fraction=keep, seed=seed)
    weights = tr.class_weights(y)
    present = np.unique(y)
    expected = compute_class_weight("balanced", classes=present, y=y)
    assert list(weights) == present.tolist()
    np.testing.assert_array_equal(np.array(list(weights.values())), expected)
    # a class missing from the labels gets no weight, and the others keep scikit-learn's values
    without = y[y != 4]
    assert 4 not in tr.class_weights(without)
    np.testing.assert_array_equal(list(tr.class_weights(without).values()),
                                  compute_class_weight("balanced", classes=np.unique(without), y=without))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_scores_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    price = rng.uniform(50_000, 500_000, 300)
    predicted = price + rng.normal(0, 20_000, 300)
    errors = reg.dollar_errors(price, predicted)
    assert errors["mae"] == pytest.approx(mean_absolute_error(price, predicted), rel=1e-14)
    assert errors["rmse"] == pytest.approx(np.sqrt(mean_squared_error(price, predicted)), rel=1e-14)
    truth = rng.random((120, 24))
    forecasts = truth + rng.normal(0, 0.1, truth.shape)
    s = fc.scores(forecasts, truth)
    assert s["mse"] == pytest.approx(mean_squared_error(truth.ravel(), forecasts.ravel()), rel=1e-14)
    assert s["mae"] == pytest.approx(mean_absolute_error(truth.ravel(), forecasts.ravel()), rel=1e-14)
    np.testing.assert_allclose(fc.horizon_mse(forecasts, truth),
                               mean_squared_error(truth, forecasts, multioutput="raw_values"), rtol=1e-14)
