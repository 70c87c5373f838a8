"""AppTest of the tricks page: each experiment with a tiny run, its results, and its settings in the URL."""

from __future__ import annotations

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
