"""Tricks of the trade: the imbalance tools change class counts as stated, the threshold move is
Bayes' prior correction, shuffling runs differ only in order, early stopping keeps the best weights."""

from __future__ import annotations

import numpy as np
import pytest

from dnn2core import data
from dnn2core import tricks as tr


def labels(counts) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def fake(counts):
    y = labels(counts)
    x = np.arange(len(y), dtype=np.float32)[:, None]  # x remembers which example it was
    return x, y


def test_make_imbalanced_keeps_a_fraction_of_one_class_only():
    x, y = fake([100] * 10)
    xi, yi = tr.make_imbalanced(x, y, rare_class=3, keep_fraction=0.05, seed=0)
    counts = tr.class_counts(yi)
    assert counts[3] == 5 and np.delete(counts, 3).tolist() == [100] * 9
    np.testing.assert_array_equal(y[xi[:, 0].astype(int)], yi)        # rows stay paired with labels
    assert tr.class_counts(tr.make_imbalanced(x, y, 3, 0.001, 0)[1])[3] == 1  # at least one is kept
    with pytest.raises(ValueError, match="0 to 9"):
        tr.make_imbalanced(x, y, 12, 0.5)
    with pytest.raises(ValueError, match="keep_fraction"):
        tr.make_imbalanced(x, y, 3, 0.0)


def test_subsample_cuts_every_class_to_the_rarest():
    x, y = fake([50, 7, 30, 12, 50, 50, 50, 50, 50, 50])
    xs, ys = tr.subsample(x, y, seed=1)
    assert tr.class_counts(ys).tolist() == [7] * 10
    assert len(np.unique(xs[:, 0])) == 70                                 # no duplicates
    np.testing.assert_array_equal(y[xs[:, 0].astype(int)], ys)


def test_oversample_duplicates_up_to_the_commonest():
    x, y = fake([50, 7, 30, 12, 50, 50, 50, 50, 50, 50])
    xo, yo = tr.oversample(x, y, seed=1)
    assert tr.class_counts(yo).tolist() == [50] * 10
    assert set(xo[:, 0].astype(int)) == set(range(len(y)))               # every original example is in
    np.testing.assert_array_equal(y[xo[:, 0].astype(int)], yo)
    assert not np.all(np.diff(yo) >= 0)                                  # and the result is shuffled


def test_class_weights_balance_the_total_weight():
    y = labels([100, 10, 100, 100, 100, 100, 100, 100, 100, 100])
    w = tr.class_weights(y)
    assert w[1] == pytest.approx(910 / (10 * 10)) and w[0] == pytest.approx(910 / (10 * 100))
    totals = [w[c] * n for c, n in enumerate(tr.class_counts(y))]
    np.testing.assert_allclose(totals, totals[0])
    assert 5 not in tr.class_weights(labels([3, 3, 3, 3, 3, 0, 3, 3, 3, 3]))


def test_moved_threshold_is_the_prior_correction():
    y = labels([100, 100, 100, 5, 100, 100, 100, 100, 100, 100])
    assert tr.prior_factor(y, 3) == pytest.approx(20.0)
    probs = np.full((4, 10), 0.1)
    probs[:, 3] = [0.02, 0.04, 0.1, 0.2]
    probs = probs / probs.sum(axis=1, keepdims=True)
    out = tr.adjust_threshold(probs, 3, 20.0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert (out[:, 3] > probs[:, 3]).all() and (out.argmax(axis=1) == 3).all()
    np.testing.assert_allclose(tr.adjust_threshold(probs, 3, 1.0), probs)
    with pytest.raises(ValueError, match="positive"):
        tr.adjust_threshold(probs, 3, 0.0)


def test_per_class_report_known_values():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    rep = tr.per_class_report(y_true, y_pred, n_classes=3)
    np.testing.assert_allclose(rep["recall"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(rep["precision"], [0.5, 2 / 3, np.nan])
    assert rep["support"].tolist() == [2, 2, 1]


def test_prior_setup_counts_and_runs():
    x, y = fake([40] * 10)
    d = tr.DigitData(x, y, x[:20], y[:20])
    setup = tr.prior_setup(d, rare_class=7, keep_fraction=0.1, seed=0)
    counts = setup.counts()
    assert counts.loc["No correction", "7"] == 4 and counts.loc["No correction", "total"] == 364
    assert counts.loc["Subsampling", "total"] == 40 and counts.loc["Duplication", "total"] == 400
    assert setup.factor == pytest.approx(10.0)
    runs = tr.prior_runs(setup, d, epochs=1)
    assert [r.name for r in runs] == ["No correction", "Subsampling", "Duplication", "Class weights"]
    assert [("class_weight" in r.fit_kwargs) for r in runs] == [False, False, False, True]

    class Fixed:  # a stand-in model whose probabilities barely favour class 0 over the rare 7
        def predict(self, x, **kw):
            p = np.full((len(x), 10), 0.05)
            p[:, 0], p[:, 7] = 0.4, 0.2
            return p / p.sum(axis=1, keepdims=True)

    preds = tr.prior_predictions({"No correction": Fixed()}, setup, x[:5])
    assert preds["No correction"].tolist() == [0] * 5 and preds["Moved threshold"].tolist() == [7] * 5
    summary = tr.prior_summary(np.full(5, 7), preds, 7)
    assert summary.set_index("method").loc["Moved threshold", "recall of 7"] == 1.0


def test_shuffling_runs_differ_only_in_order():
    x, y = fake([3] * 10)
    d = tr.DigitData(x, tr.shuffle_together(x, y, 0)[1], x[:5], y[:5])
    runs = tr.shuffling_runs(d, epochs=2, batch_size=8, with_keras_shuffle=True)
    ordered, shuffled, keras_shuffled = (r.fit_kwargs for r in runs)
    assert np.all(np.diff(ordered["y"]) >= 0) and ordered["shuffle"] is False
    assert shuffled["shuffle"] is True and not np.all(np.diff(shuffled["y"]) >= 0)
    assert keras_shuffled["shuffle"] is True and np.all(np.diff(keras_shuffled["y"]) >= 0)
    assert sorted(ordered["y"].tolist()) == sorted(shuffled["y"].tolist())
    assert all("validation_split" not in k and "validation_data" in k for k in (ordered, shuffled))
    assert tr.last_batch_classes(ordered["y"], 3) == [7, 8, 9]
    big = tr.shuffling_runs(d, epochs=1, batch_size=tr.FULL_BATCH)
    assert big[0].fit_kwargs["batch_size"] == 30


def test_digit_data_from_the_embedded_sample(no_local_data):
    mnist = data.load_mnist().data
    d = tr.digit_data(mnist, 300, 200, seed=0)
    assert d.x_train.shape == (300, 784) and d.x_val.shape == (200, 784)
    assert d.x_train.dtype == np.float32 and 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert len(np.unique(d.y_train)) == 10


def test_early_stopping_keeps_the_best_epochs_weights(no_local_data):
    """Overfit 200 digits; the weights left in the model give exactly the best epoch's val loss."""
    import keras

    mnist = data.load_mnist().data
    d = tr.digit_data(mnist, 200, 300, seed=0)
    runs = tr.early_stopping_runs(d, max_epochs=25, patience=2, batch_size=32, hidden=128, learning_rate=1e-2,
                                  compare=False)
    run = runs[0]
    keras.utils.set_random_seed(0)
    model = run.build()
    history = model.fit(**run.fit_kwargs, verbose=0).history
    report = tr.early_stopping_report(history, run.evaluate(model), max_epochs=25)
    assert report["stopped_early"] and report["epochs_run"] == report["best_epoch"] + 2
    assert report["last_val_loss"] > report["best_val_loss"]
    assert report["kept_val_loss"] == pytest.approx(report["best_val_loss"], rel=1e-5)
    assert report["best_val_loss"] == pytest.approx(min(history["val_loss"]))
    assert tr.best_epoch([3.0, 1.0, 1.0, 2.0]) == 2


def test_net_settings_are_what_each_experiment_trains():
    """One source for the page's runs and their Keras code (issue 14: the code showed other numbers)."""
    shuffle = tr.net_settings("shuffle", {"n": 300, "epochs": 4, "batch": tr.FULL_BATCH, "opt": "sgd"})
    assert shuffle == tr.NetSettings(64, "sgd", 0.05, 300, 4)  # a full batch is the whole set
    stop = tr.net_settings("stop", {"n": 500, "epochs": 40, "hidden": 256, "lr": 3e-3})
    assert stop == tr.NetSettings(256, "adam", 3e-3, 32, 40)
    assert tr.net_settings("prior", {"n": 4000, "epochs": 5, "rare": 3, "keep": 0.05}) == \
        tr.NetSettings(64, "adam", 1e-3, 32, 5)
    assert tr.net_settings("divide", {"n": 4000, "epochs": 5, "k": 4, "hidden": 128}) == \
        tr.NetSettings(128, "adam", 1e-3, 32, 5)
    with pytest.raises(ValueError, match="Unknown experiment"):
        tr.net_settings("dropout", {"epochs": 1})
