"""Divide and conquer (dnn2core.hierarchy): near classes are grouped, the hierarchy's probabilities
are P(group) x P(class | group), each group net learns only its digits, and a tiny real run on MNIST
digits reaches a floor."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from dnn2core import data
from dnn2core import hierarchy as h
from dnn2core import tricks as tr
from dnn2core.style import group_color


def near_pairs(per_class: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ten classes around far-apart centres, except 1 sits next to 0 and 3 next to 2."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (10, 20))
    centres[1] = centres[0] + 0.5
    centres[3] = centres[2] - 0.7
    y = np.repeat(np.arange(10), per_class)
    x = centres[y] + rng.normal(0, 0.1, (len(y), 20))
    return x.astype(np.float32), y, centres


def test_class_means_are_the_per_class_averages():
    x, y, centres = near_pairs()
    means = h.class_means(x, y)
    assert means.shape == (10, 20)
    np.testing.assert_allclose(means[4], x[y == 4].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(means, centres, atol=0.1)
    with pytest.raises(ValueError, match=r"none of \[7\]"):
        h.class_means(x[y != 7], y[y != 7])


def test_near_classes_land_in_the_same_group():
    x, y, _ = near_pairs()
    Z = h.class_linkage(h.class_means(x, y))
    assert Z.shape == (9, 4) and np.all(np.diff(Z[:, 2]) >= 0)          # Ward's heights only grow
    assert sorted(map(int, Z[0, :2])) == [0, 1] and sorted(map(int, Z[1, :2])) == [2, 3]  # the closest first
    assert h.cut_groups(Z, 8) == [[0, 1], [2, 3], [4], [5], [6], [7], [8], [9]]
    assert h.cut_groups(Z, 9) == [[0, 1], [2], [3], [4], [5], [6], [7], [8], [9]]
    assert h.cut_groups(Z, 10) == [[c] for c in range(10)] and h.cut_groups(Z, 1) == [list(range(10))]
    for k in range(2, 8):  # every coarser cut keeps each pair together
        groups = h.cut_groups(Z, k)
        assert len(groups) == k and sorted(c for g in groups for c in g) == list(range(10))
        assert any({0, 1} <= set(g) for g in groups) and any({2, 3} <= set(g) for g in groups)
        assert [g[0] for g in groups] == sorted(g[0] for g in groups)   # numbered by smallest class
    from scipy.cluster.hierarchy import fcluster
    for k in range(1, 11):  # the drawn cut leaves exactly the groups fcluster(maxclust) gives
        labels = fcluster(Z, h.cut_height(Z, k), criterion="distance")
        assert len(np.unique(labels)) == k
    with pytest.raises(ValueError, match="from 1 to 10"):
        h.cut_groups(Z, 11)


def test_group_index_and_remap():
    groups = [[0], [1, 3, 5, 8], [2, 6], [4, 7, 9]]
    assert h.group_index(groups).tolist() == [0, 1, 2, 1, 3, 1, 2, 3, 1, 3]
    assert h.remap(np.array([8, 3, 1, 5, 3]), [1, 3, 5, 8]).tolist() == [3, 1, 0, 2, 1]
    assert h.remap(np.array([6, 2]), [6, 2]).tolist() == [1, 0]                      # groups are sorted
    with pytest.raises(ValueError, match="outside the group"):
        h.remap(np.array([1, 4]), [1, 3])
    with pytest.raises(ValueError, match="each exactly once"):
        h.group_index([[0, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]])


def test_combine_is_p_group_times_p_class_given_group():
    groups = [[0], [1, 2]]
    coarse = np.array([[0.2, 0.8], [0.6, 0.4]])
    within = {1: np.array([[0.25, 0.75], [0.5, 0.5]])}
    out = h.combine(coarse, within, groups)
    np.testing.assert_allclose(out, [[0.2, 0.2, 0.6], [0.6, 0.2, 0.2]])
    # ten digits in four groups, random probabilities: every row still sums to one
    rng = np.random.default_rng(1)
    groups = [[0], [1, 3, 5, 8], [2, 6], [4, 7, 9]]
    coarse = rng.dirichlet(np.ones(4), 50)
    within = {i: rng.dirichlet(np.ones(len(g)), 50) for i, g in enumerate(groups) if len(g) > 1}
    out = h.combine(coarse, within, groups)
    assert out.shape == (50, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out[:, 0], coarse[:, 0])                       # a one-digit group
    np.testing.assert_allclose(out[:, 6], coarse[:, 2] * within[2][:, 1])     # digit 6 is second in [2, 6]
    with pytest.raises(ValueError, match="No probabilities for group 2"):
        h.combine(coarse, {2: within[2], 3: within[3]}, groups)
    with pytest.raises(ValueError, match="one column per group"):
        h.combine(coarse[:, :3], within, groups)


def fake_digits(per_class: int = 12, n_val_per_class: int = 3) -> tr.DigitData:
    """x remembers which example it is (column 0), so the tests can see which rows a run got."""
    y = np.tile(np.arange(10), per_class)
    yv = np.tile(np.arange(10), n_val_per_class)
    x = np.zeros((len(y), 784), dtype=np.float32)
    x[:, 0] = np.arange(len(y))
    xv = np.zeros((len(yv), 784), dtype=np.float32)
    xv[:, 0] = np.arange(len(yv))
    return tr.DigitData(x, y, xv, yv)


def test_runs_are_flat_coarse_and_one_per_group():
    d = fake_digits()
    groups = [[0], [1, 3, 5, 8], [2, 6], [4, 7, 9]]
    runs = h.hierarchy_runs(d, groups, epochs=2, hidden=16, learning_rate=1e-3, batch_size=32)
    assert [r.name for r in runs] == ["Flat", "Coarse (4 groups)", "Group 2: digits 1, 3, 5, 8",
                                      "Group 3: digits 2, 6", "Group 4: digits 4, 7, 9"]
    flat, coarse, g2, g3, _ = (r.fit_kwargs for r in runs)
    np.testing.assert_array_equal(flat["y"], d.y_train)
    np.testing.assert_array_equal(coarse["y"], h.group_index(groups)[d.y_train])
    np.testing.assert_array_equal(coarse["validation_data"][1], h.group_index(groups)[d.y_val])
    # group 3 sees only the 2s and 6s, relabelled 0 and 1; its validation digits likewise
    rows = g3["x"][:, 0].astype(int)
    assert set(d.y_train[rows]) == {2, 6} and len(rows) == 24
    np.testing.assert_array_equal(g3["y"], (d.y_train[rows] == 6).astype(int))
    vrows = g3["validation_data"][0][:, 0].astype(int)
    assert set(d.y_val[vrows]) == {2, 6}
    np.testing.assert_array_equal(g3["validation_data"][1], (d.y_val[vrows] == 6).astype(int))
    assert sorted(set(g2["y"].tolist())) == [0, 1, 2, 3] and g2["batch_size"] == 32 and g3["batch_size"] == 24
    assert all(r.fit_kwargs["epochs"] == 2 and r.fit_kwargs["shuffle"] is True for r in runs)
    # picklable (a worker process trains them) and each builds the net its task needs
    again = pickle.loads(pickle.dumps(runs))
    outputs = [r.build().output_shape[-1] for r in again]
    assert outputs == [10, 4, 4, 2, 3]
    assert [r.build().count_params() for r in again[:2]] == [h.dense_params(16, 10), h.dense_params(16, 4)]
    assert h.dense_params(64, 10) == 50_890
    # every evaluate gives probabilities on ALL validation digits
    model = again[3].build()
    assert set(again[3].evaluate(model)) == {"val_probs"} and again[3].evaluate(model)["val_probs"].shape == (30, 2)
    flat_model = again[0].build()
    flat_out = again[0].evaluate(flat_model)  # the flat net alone also says its accuracy
    assert flat_out["flat_digit_accuracy"] == pytest.approx(np.mean(flat_out["val_probs"].argmax(axis=1) == d.y_val))
    with pytest.raises(ValueError, match="at least two groups"):
        h.hierarchy_runs(d, [list(range(10))], epochs=1, hidden=8, learning_rate=1e-3, batch_size=8)


def test_build_small_dense_default_is_unchanged():
    model = tr.build_small_dense(64, "adam", 1e-3)
    assert model.output_shape == (None, 10) and model.count_params() == 50_890
    assert tr.build_small_dense(64, "adam", 1e-3, n_classes=3).count_params() == h.dense_params(64, 3)


def hand_made() -> tuple[np.ndarray, h.HierarchyProbs, list[list[int]]]:
    """Groups {0, 1} and {2}; six digits. The coarse net gets digit 4 (index 4) in the wrong group."""
    groups = [[0, 1], [2]]
    y = np.array([0, 0, 1, 1, 2, 2])
    flat = np.eye(3)[[0, 1, 1, 1, 2, 0]]                 # wrong on index 1 (within group) and 5 (across)
    coarse = np.eye(2)[[0, 0, 0, 0, 0, 1]] * 0.9 + 0.05  # wrong group for index 4
    within = {0: np.eye(2)[[0, 0, 0, 1, 1, 0]] * 0.8 + 0.1}  # wrong on index 2; index 4/5: no matter
    return y, h.HierarchyProbs(flat, coarse, within), groups


def test_summary_and_group_report_on_hand_made_probabilities():
    y, probs, groups = hand_made()
    assert probs.predicted(groups).tolist() == [0, 0, 0, 1, 1, 2]            # wrong on index 2 (within) and 4 (coarse)
    params = {"Flat": 100, "Coarse (2 groups)": 60, "Group 1: digits 0, 1": 50}
    table = h.summary(y, probs, groups, params).set_index("system")
    assert list(table.index) == ["Flat net", "Coarse net alone (2 groups)", "Hierarchy (coarse + 1 group net)"]
    assert table.loc["Flat net", "digit accuracy"] == pytest.approx(4 / 6)
    assert table.loc["Flat net", "group accuracy"] == pytest.approx(5 / 6)
    assert table.loc["Flat net", "errors already in the wrong group"] == pytest.approx(1 / 2)
    assert table.loc["Coarse net alone (2 groups)", "group accuracy"] == pytest.approx(5 / 6)
    hrow = table.loc["Hierarchy (coarse + 1 group net)"]
    assert hrow["digit accuracy"] == pytest.approx(4 / 6) and hrow["errors already in the wrong group"] == 0.5
    assert hrow["parameters"] == 110 and hrow["nets"] == 2 and table.loc["Flat net", "parameters"] == 100
    report = h.group_report(y, probs, groups)
    assert report.to_dict("records") == [{"group": 1, "digits": "0, 1", "validation digits": 4,
                                          "group net": 0.75, "flat net": 0.75}]


def test_run_probabilities_reads_the_stored_arrays_or_none():
    groups = [[0], list(range(1, 10))]
    art = {"Flat/val_probs": np.ones((2, 10)) / 10, "Coarse (2 groups)/val_probs": np.ones((2, 2)) / 2,
           "Group 2: digits 1, 2, 3, 4, 5, 6, 7, 8, 9/val_probs": np.ones((2, 9)) / 9}
    probs = h.run_probabilities(art, groups)
    assert set(probs.groups) == {1} and probs.flat.shape == (2, 10)
    np.testing.assert_allclose(probs.combined(groups)[0], [0.5] + [0.5 / 9] * 9)
    del art["Coarse (2 groups)/val_probs"]
    assert h.run_probabilities(art, groups) is None     # a stopped run


def test_groups_table_counts_the_training_digits():
    y = np.repeat(np.arange(10), np.arange(1, 11))
    table = h.groups_table([[0], [1, 3, 5, 8], [2, 6], [4, 7, 9]], y, 64)
    assert table["training digits"].tolist() == [1, 2 + 4 + 6 + 9, 3 + 7, 5 + 8 + 10]
    assert table["digits"].tolist() == ["0", "1, 3, 5, 8", "2, 6", "4, 7, 9"]
    assert table["its own net"][0].startswith("none") and "50,500 parameters" in table["its own net"][1]


def test_divide_verdict_reads_the_table():
    def table(flat, hier, share, coarse_acc=0.9):
        return pd.DataFrame([
            {"system": "Flat net", "parameters": 50_890, "digit accuracy": flat, "group accuracy": 0.9,
             "errors already in the wrong group": 0.5},
            {"system": "Coarse net alone (4 groups)", "parameters": 50_500, "digit accuracy": np.nan,
             "group accuracy": coarse_acc, "errors already in the wrong group": np.nan},
            {"system": "Hierarchy (coarse + 3 group nets)", "parameters": 201_805, "digit accuracy": hier,
             "group accuracy": 0.9, "errors already in the wrong group": share}])
    tie = h.divide_verdict(table(0.829, 0.815, 0.497), 1000)
    assert "**Flat net: 82.9%**, **hierarchy: 81.5%** of 1,000" in tie and "1.4-point difference is within" in tie
    assert "50% of the hierarchy's errors were made by the coarse net" in tie and "accuracy 90.0%" in tie
    assert "The hierarchy has 4.0× the flat net's parameters (201,805 against 50,890)" in tie
    assert "The flat net wins by 10.0 points" in h.divide_verdict(table(0.9, 0.8, 0.6), 1000)
    assert "The hierarchy wins by 10.0 points" in h.divide_verdict(table(0.8, 0.9, 0.6), 1000)


def test_dendrogram_draws_the_tree_the_cut_and_the_group_colours():
    x, y, _ = near_pairs()
    Z = h.class_linkage(h.class_means(x, y))
    fig = h.dendrogram_figure(Z, [str(c) for c in range(10)], k=8)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert sum(sum(v is None for v in t.x) for t in lines) == 9              # nine merges, one line each
    named = {t.name: t.line.color for t in lines}
    assert named["group 1"] == group_color(0) and named["group 2"] == group_color(1)  # {0, 1} and {2, 3}
    assert named["above the cut"] == group_color(-1) and len(named) == 3
    leaves = next(t for t in fig.data if t.mode == "markers")
    colours = dict(zip(fig.layout.xaxis.ticktext, leaves.marker.color))
    assert colours["0"] == colours["1"] == group_color(0) and colours["2"] == colours["3"] == group_color(1)
    assert colours["9"] == group_color(7)
    assert fig.layout.shapes[0].y0 == pytest.approx(h.cut_height(Z, 8))
    assert sorted(fig.layout.xaxis.ticktext) == [str(c) for c in range(10)]
    plain = h.dendrogram_figure(Z, [str(c) for c in range(10)])
    assert not plain.layout.shapes and {t.name for t in plain.data if t.mode == "lines"} == {"above the cut"}


@pytest.mark.timeout(600)
def test_tiny_real_run_on_mnist_digits():
    """1,000 real digits (MNIST from DNN2_DATA_DIR, else the embedded sample), 3 epochs, seed 0."""
    import keras

    d = tr.digit_data(data.load_mnist().data, 1000, 1000, seed=0)
    groups = h.cut_groups(h.class_linkage(h.class_means(d.x_train, d.y_train)), 4)
    assert len(groups) == 4
    runs = h.hierarchy_runs(d, groups, epochs=3, hidden=64, learning_rate=1e-3, batch_size=32)
    keras.utils.set_random_seed(0)
    artifacts, params = {}, {}
    for run in runs:
        model = run.build()
        model.fit(**run.fit_kwargs, verbose=0)
        params[run.name] = model.count_params()
        artifacts.update({f"{run.name}/{k}": v for k, v in run.evaluate(model).items()})
    probs = h.run_probabilities(artifacts, groups)
    table = h.summary(d.y_val, probs, groups, params).set_index("system")
    flat, coarse, hier = (table.iloc[i] for i in range(3))
    assert hier["digit accuracy"] > 0.7 and flat["digit accuracy"] > 0.7
    assert coarse["group accuracy"] >= flat["digit accuracy"] - 0.02    # four groups are no harder than ten digits
    assert hier["parameters"] == sum(params[n] for n in params if n != "Flat")
