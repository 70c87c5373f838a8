"""AppTest of the tricks page: each experiment with a tiny run, its results, and its settings in the URL."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from conftest import own_runs, qp, run_registry, open_page

pytestmark = pytest.mark.timeout(300)


def page(**params) -> AppTest:
    return open_page("pages/tricks.py", **params)

def text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def finish(at, part: str):
    at.button(key=f"tricks.{part}.start").click().run()
    assert not at.exception, at.exception
    [key] = own_runs(at, f"tricks.{part}")
    rec = run_registry().wait(key, 120)
    at.run()
    assert not at.exception, at.exception
    assert rec.state == "done" and rec.settings["part"] == part, rec.message
    return run_registry().view(key).snapshot()


def test_three_tiny_experiments(no_local_data):
    at = page(sh_n="1000", sh_epochs="2", sh_batch="16", es_n="250", es_epochs="6", es_patience="1",
              es_lr="0.01", es_hidden="64", pr_n="1000", pr_epochs="1", pr_keep="0.1", pr_class="7")
    assert "sample" in " ".join(i.value for i in at.info)
    # 1. shuffling: the sorted run learns far less than the shuffled one on the same budget
    snap = finish(at, "shuffle")
    assert list(snap.models) == ["Ordered by class", "Shuffled"]
    ordered = snap.models["Ordered by class"].history["val_accuracy"][-1]
    shuffled = snap.models["Shuffled"].history["val_accuracy"][-1]
    assert shuffled > 0.6 and shuffled > ordered + 0.2
    table = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert list(table["run"]) == ["Ordered by class", "Shuffled"]
    assert "shuffle=False" in " ".join(c.value for c in at.code)
    # 2. early stopping: the kept weights give the best epoch's validation loss
    snap = finish(at, "stop")
    assert set(snap.models) == {"Early stopping", "All epochs"}
    shown = {m.label: m.value for m in at.metric}
    assert shown["Validation loss of the kept weights"] == shown["Best validation loss"]
    val = snap.models["Early stopping"].history["val_loss"]
    assert int(shown["Best epoch"]) == val.index(min(val)) + 1
    assert "restore_best_weights" in text(at)
    # the result commented from the run's own numbers; one loss chart (the run's, best epoch starred)
    from dnn2core import tricks as tr
    es, every = snap.models["Early stopping"], snap.models["All epochs"]
    verdict = tr.early_stopping_verdict(es.results, es.epoch, every.results, every.epoch, 1000)
    assert verdict in text(at)
    assert f"**With early stopping: {es.results['final_val_accuracy']:.1%}**" in verdict
    assert f"**without: {every.results['final_val_accuracy']:.1%}**" in verdict
    import json
    loss_charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    loss_charts = [c for c in loss_charts if c["layout"]["yaxis"]["title"]["text"] == "loss"
                   and any(t["name"].startswith("Early stopping") for t in c["data"])]
    assert len(loss_charts) == 1 and any("best epoch" in t["name"] for t in loss_charts[0]["data"])
    # 3. rare classes: four trainings, five rows; the corrections raise the rare digit's recall
    snap = finish(at, "prior")
    assert list(snap.models) == ["No correction", "Subsampling", "Duplication", "Class weights"]
    summary = next(d.value for d in at.dataframe if "method" in d.value.columns).set_index("method")
    assert list(summary.index) == ["No correction", "Subsampling", "Duplication", "Class weights", "Moved threshold"]
    assert summary.loc["Moved threshold", "recall of 7"] >= summary.loc["No correction", "recall of 7"]
    assert summary.loc["Subsampling", "training digits"] < summary.loc["No correction", "training digits"]
    at.selectbox(key="tricks.cm_of").set_value("Class weights").run()
    assert not at.exception
    assert len(run_registry().store.runs("tricks", include_reference=False)) == 3 and qp(at, "pr_class") == "7"


def test_early_stopping_verdict_reads_the_numbers():
    from dnn2core import tricks as tr
    # the run: 85.4% with, 86.0% without, on 1,000 digits: within the noise, and the loss disagrees
    words = tr.early_stopping_verdict({"final_val_accuracy": 0.854, "final_val_loss": 0.50}, 9,
                                      {"final_val_accuracy": 0.860, "final_val_loss": 0.71}, 40, 1000)
    assert "**With early stopping: 85.4%**" in words and "**without: 86.0%** after 40" in words
    assert "0.6-point difference is within the noise of 1,000 validation digits" in words
    assert "the two measures disagree" in words and "31 of 40 epochs (78% of the training time)" in words
    big = tr.early_stopping_verdict({"final_val_accuracy": 0.90, "final_val_loss": 0.3}, 10,
                                    {"final_val_accuracy": 0.80, "final_val_loss": 0.9}, 40, 1000)
    assert "Early stopping wins by 10.0 points" in big and "disagree" not in big
    assert 0.02 < tr.accuracy_noise(0.857, 1000) < 0.04


def test_settings_travel_in_the_url_and_never_start_a_run(no_local_data):
    at = page()
    at.slider(key="tricks.sh_epochs").set_value(3)
    at.checkbox(key="tricks.sh_keras").set_value(True)
    at.selectbox(key="tricks.pr_class").set_value(5)
    at.run()
    assert not at.exception
    assert qp(at, "sh_epochs") == "3" and qp(at, "sh_keras") == "1" and qp(at, "pr_class") == "5"
    assert run_registry().store.runs("tricks", include_reference=False) == []
    assert "epochs=3" in " ".join(c.value for c in at.code)


def test_divide_and_conquer_groups_before_training_then_a_tiny_run(no_local_data):
    """Issue 14: the fourth trick. The tree and its groups show before any training; a tiny run's
    summary table is the hierarchy module's reading of the run's own stored probabilities."""
    import numpy as np

    from dnn2core import data, evaluation, hierarchy
    from dnn2core import tricks as tr

    at = page(hd_n="1000", hd_k="3", hd_epochs="2", hd_hidden="32")
    # before training: the groups of these digits, each with its training-digit count
    d = tr.digit_data(data.load_mnist().data, 1000, 1000, 0)
    groups = hierarchy.cut_groups(hierarchy.class_linkage(hierarchy.class_means(d.x_train, d.y_train)), 3)
    table = next(t.value for t in at.dataframe if "its own net" in t.value.columns)
    assert table["digits"].tolist() == [", ".join(map(str, g)) for g in groups] and len(groups) == 3
    assert table["training digits"].sum() == 1000
    assert table["training digits"].tolist() == [int(np.isin(d.y_train, g).sum()) for g in groups]
    assert any(json_title(c) == "Agglomerative clustering of the digits' mean images" for c in at.get("plotly_chart"))
    assert 'fcluster(tree, 3, criterion="maxclust")' in " ".join(c.value for c in at.code)
    assert run_registry().store.runs("tricks", include_reference=False) == []
    # a tiny run: flat, coarse and one net per group of 2+ digits
    snap = finish(at, "divide")
    nets = [g for g in groups if len(g) > 1]
    assert list(snap.models) == ["Flat", "Coarse (3 groups)"] + [
        hierarchy.group_name(groups.index(g), g) for g in nets]
    summary = next(t.value for t in at.dataframe if "system" in t.value.columns).set_index("system")
    [key] = own_runs(at, "tricks.divide")
    probs = hierarchy.run_probabilities(run_registry().view(key).artifacts(), groups)
    params = {name: mp.params for name, mp in snap.models.items()}
    expected = hierarchy.summary(d.y_val, probs, groups, params).set_index("system")
    assert list(summary.index) == list(expected.index) == [
        "Flat net", "Coarse net alone (3 groups)", f"Hierarchy (coarse + {len(nets)} group net{'s' * (len(nets) > 1)})"]
    for col in ("digit accuracy", "group accuracy", "errors already in the wrong group"):
        np.testing.assert_allclose(summary[col].to_numpy(float), expected[col].to_numpy(float), equal_nan=True)
    flat, hier = summary.loc["Flat net"], summary.iloc[2]
    assert flat["digit accuracy"] == pytest.approx(snap.models["Flat"].results["flat_digit_accuracy"])
    assert flat["digit accuracy"] > 0.6 and hier["digit accuracy"] > 0.6
    assert flat["parameters"] == hierarchy.dense_params(32, 10)
    assert hier["parameters"] == hierarchy.dense_params(32, 3) + sum(hierarchy.dense_params(32, len(g)) for g in nets)
    assert hierarchy.divide_verdict(expected.reset_index(), 1000) in text(at)
    cm = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
              if json_title(c) == "Hierarchy: confusion matrix (validation digits)")
    np.testing.assert_array_equal(plotly_array(cm["data"][0]["z"]),
                                  evaluation.confusion_matrix(d.y_val, probs.predicted(groups)))
    import os
    assert snap.process not in (0, os.getpid())  # the runs pickled: a worker process trained them
    assert qp(at, "hd_k") == "3"


def json_title(chart) -> str:
    title = json.loads(chart.proto.spec)["layout"].get("title", {})
    return title.get("text", "") if isinstance(title, dict) else str(title)


def plotly_array(value):
    """A Plotly array from a figure's JSON: a plain list, or base64 binary with a dtype and shape."""
    import base64

    import numpy as np

    if isinstance(value, dict) and "bdata" in value:
        shape = [int(v) for v in str(value.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value)
