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
