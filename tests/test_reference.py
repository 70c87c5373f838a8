"""The course's reference runs shipped in assets/reference: complete, small, loaded read-only into
every store, reproducing the course's figures, and found by the page links with the course's settings."""

from __future__ import annotations

from conftest import ROOT, open_page

from dnn2core import reference
from dnn2core.runs import RunStore

REF = ROOT / "assets" / "reference"


def _records(tmp_path):
    store = RunStore(tmp_path / "store", reference_dir=REF)
    return store, {r.key: r for r in store.runs() if r.reference}


def test_every_shipped_run_loads_read_only_with_its_provenance(tmp_path):
    store, refs = _records(tmp_path)
    experiments = sorted(r.experiment for r in refs.values())
    assert experiments == ["housing", "housing", "housing", "mnist", "sequences", "sequences"]
    for rec in refs.values():
        assert rec.state == "done" and rec.device and rec.provenance["date"] and rec.provenance["versions"]["keras"]
        assert rec.model_names, rec.key
    assert store.evict() == [] and all(store.delete(k) is False for k in refs)


def test_shipped_models_fit_the_size_limits():
    sizes = [p.stat().st_size for p in REF.glob("*/*.keras")]
    assert sizes and max(sizes) <= reference.MAX_MODEL_BYTES and sum(sizes) <= reference.MAX_TOTAL_BYTES


def test_the_reference_runs_reproduce_the_course(tmp_path):
    _, refs = _records(tmp_path)
    by = {}
    for rec in refs.values():
        by.setdefault(rec.experiment, []).append(rec)
    [mnist] = by["mnist"]
    assert mnist.settings["n"] == 60_000 and mnist.settings["epochs"] == 5
    assert mnist.metrics["Dense"]["test_accuracy"] > 0.96 and mnist.metrics["CNN"]["test_accuracy"] > 0.985
    for rec in by["sequences"]:  # the course's ranking after 500 epochs: the LSTM forecasts best
        assert rec.settings["epochs"] == 500
        mse = {k: v["val_mse"] for k, v in rec.metrics.items()}
        assert min(mse, key=mse.get) == "LSTM", (rec.settings["layout"], mse)
    assert {r.settings["layout"] for r in by["sequences"]} == {"course", "sequence"}
    # The course's raw-feature network is noisy from epoch to epoch: its level is the median of the last 50
    # epochs' dev MAE. "Within $30,000 ... after training out to 5,000 epochs" (Video 7).
    import statistics

    def level(r):
        return statistics.median(r.progress["models"]["Network"]["history"]["val_mae"][-50:])

    runs = {(r.settings["epochs"], r.settings["std"], r.settings["log"]): r for r in by["housing"]}
    assert set(runs) == {(500, False, False), (500, True, True), (5000, False, False)}
    assert level(runs[(500, False, False)]) < 35_000 and level(runs[(5000, False, False)]) < 32_000
    assert len(runs[(5000, False, False)].progress["models"]["Network"]["history"]["val_mae"]) == 5000  # every epoch
    assert runs[(500, True, True)].metrics["Network"]["dev_mae"] < level(runs[(500, False, False)])


def test_reference_list_names_the_course_runs(capsys):
    assert reference.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "60,000 digits" in out and "500 epochs, sequence shape" in out and "cats_dogs" in out


def test_a_link_with_the_courses_settings_shows_its_run_at_once(shared_data_dir, tmp_path):
    """On a server with the real MNIST, the course's settings are the reference run's key."""
    _, refs = _records(tmp_path)
    [course] = [r for r in refs.values() if r.experiment == "mnist"]
    at = open_page("pages/mnist.py", n="60000", epochs="5", batch="32", models="Dense,CNN", seed="0", opt="rmsprop")
    assert "The course's full run, trained on" in " ".join(m.value for m in at.markdown)
    assert not [b for b in at.button if b.key == "mnist.start"]  # nothing to train: it is shown
    shown = {m.label: m.value for m in at.metric if "test accuracy" in m.label}
    assert shown["CNN test accuracy"] == f"{course.metrics['CNN']['test_accuracy']:.2%}"
