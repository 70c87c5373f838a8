"""AppTest of the MNIST page: a tiny live run, stop, no silent retraining, per-learner runs, queue."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import own_runs, qp, run_registry, open_page

pytestmark = pytest.mark.timeout(400)


def page(**params) -> AppTest:
    return open_page("pages/mnist.py", **params)

def text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def finished(key: str, timeout: float = 180):
    rec = run_registry().wait(key, timeout)
    assert rec is not None and rec.finished, rec
    return rec


def test_one_epoch_run_shows_curves_metrics_and_summary(no_local_data):
    at = page(n="500", epochs="1", seed="3")
    assert "sample" in " ".join(i.value for i in at.info)          # the embedded-sample banner
    assert "Total params: **50,890**" in text(at) and "Total params: **104,202**" in text(at)
    assert any(r"= 320" in x.value for x in at.latex)
    at.button(key="mnist.start").click().run()
    [key] = own_runs(at, "mnist")
    rec = finished(key)
    at.run()
    assert not at.exception, at.exception
    assert rec.state == "done" and rec.settings["n"] == 500 and rec.settings["seed"] == 3
    snap = run_registry().view(key).snapshot()
    for name in ("Dense", "CNN"):
        mp = snap.models[name]
        assert mp.epoch == 1 and len(mp.history["val_accuracy"]) == 1
        assert 0.0 <= mp.results["test_accuracy"] <= 1.0
        assert rec.metrics[name]["test_accuracy"] == mp.results["test_accuracy"]
        probs = run_registry().store.artifacts(key)[f"{name}/test_probs"]
        assert probs.shape == (10_000, 10) or probs.shape[1] == 10
    assert "Finished" in text(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 6  # loss + accuracy curves, networks, confusion matrices, galleries
    accuracies = [m for m in at.metric if "test accuracy" in m.label]
    assert len(accuracies) == 2
    # the run beside the course's settings on this server (the shipped reference) and the course's numbers
    against = next(d.value for d in at.dataframe if "the course says" in d.value.columns).set_index("model")
    assert against["the course says"].to_dict() == {"Dense": "about 97.0%", "CNN": "about 99.3%"}
    ref = next(r for r in run_registry().store.runs("mnist") if r.reference)
    assert ref.settings["n"] == 60000 and ref.settings["epochs"] == 5 and ref.settings["opt"] == "rmsprop"
    ref_col = "the course's settings on this server (60,000 digits, 5 ep)"
    assert against[ref_col].to_dict() == {n: f"{ref.metrics[n]['test_accuracy']:.2%}" for n in ("Dense", "CNN")}
    assert against["this run (500 digits, 1 ep)"].to_dict() == {
        n: f"{rec.metrics[n]['test_accuracy']:.2%}" for n in ("Dense", "CNN")}
    # a widget change re-runs the page, never the training
    at.slider(key="mnist.epochs").set_value(3).run()
    assert len(run_registry().store.runs("mnist", include_reference=False)) == 1
    assert qp(at, "epochs") == "3"
    code = " ".join(c.value for c in at.code)
    assert "epochs=3" in code and "layers.Conv2D(filters=32, kernel_size=3" in code
    # no run of these settings: the learner's finished run is one click away ("Open" puts its settings back)
    assert "Finished" not in text(at)
    at.button(key=f"mnist.open.{key}").click().run()
    assert qp(at, "epochs") == "1" and "Finished" in text(at)
    # a new session (a refresh, a shared link) with the same settings shows the stored run at once
    again = page(n="500", epochs="1", seed="3")
    assert "Finished" in text(again) and not own_runs(again)
    assert len([m for m in again.metric if "test accuracy" in m.label]) == 2
    assert [b for b in again.button if b.key == "mnist.start"] == []  # nothing to press
    # and the class results list it
    assert any("class" in s.value.lower() for s in again.subheader)


def test_two_learners_pressing_start_on_one_link_train_once(no_local_data):
    first = page(n="500", epochs="3", models="Dense", seed="11")
    second = page(n="500", epochs="3", models="Dense", seed="11")
    first.button(key="mnist.start").click().run()
    [key] = own_runs(first)
    # the second learner's Start (pressed on a page drawn before the run existed) attaches to it
    second.button(key="mnist.start").click().run()
    assert not second.error, [e.value for e in second.error]
    assert len(run_registry().store.runs("mnist", include_reference=False)) == 1
    if not run_registry().view(key).done:
        assert "learners watching" in text(second) or "Finished" in text(second)
        assert not [b for b in second.button if b.label == "Stop"]  # only its starter may stop a shared run
    finished(key)
    first.run()
    second.run()
    assert "Finished" in text(first) and "Finished" in text(second)
    assert len(run_registry().store.runs("mnist", include_reference=False)) == 1


def test_stop_ends_the_run_and_keeps_history(no_local_data):
    at = page(n="4000", epochs="20", batch="16", models="CNN")
    at.button(key="mnist.start").click().run()
    [key] = own_runs(at)
    # a free slot admits it at once: drawn live right away, not as "waiting" until the queue's next poll
    assert at.session_state["_runs.on_screen"] == {key: "running"}
    reg = run_registry()
    deadline = time.time() + 120
    while time.time() < deadline and reg.view(key).snapshot().models["CNN"].epoch < 1:
        time.sleep(0.2)
    at.run()  # the live panel shows the Stop button
    assert at.session_state["_runs.on_screen"] == {key: "running"}  # the keep-alive fragment's backstop
    stop = [b for b in at.button if b.label == "Stop"]
    assert stop, "no Stop button while training"
    stop[0].click().run()
    rec = finished(key, 30)
    snap = reg.view(key).snapshot()
    assert rec.state == "stopped" and snap.stop_reason == "stopped by you"
    assert 1 <= snap.models["CNN"].epoch < 20
    assert len(snap.models["CNN"].history["loss"]) == snap.models["CNN"].epoch
    assert reg.view(key).model_names == ["CNN"]  # the stopped model is kept in the store
    at.session_state["_runs.on_screen"] = {}  # app.py starts every page run so (AppTest runs the page alone)
    at.run()
    assert "Stopped" in text(at)
    assert at.session_state["_runs.on_screen"] == {}  # the result is drawn: no live view to watch over


def test_learners_queue_in_order_and_one_learner_has_one_waiting_run(no_local_data, monkeypatch):
    first = page(n="4000", epochs="20", batch="16", models="CNN")
    second = page(n="500", epochs="1", models="Dense")
    first.button(key="mnist.start").click().run()
    [k1] = own_runs(first)
    reg = run_registry()
    while reg.view(k1).snapshot().state == "queued":
        time.sleep(0.1)
    second.button(key="mnist.start").click().run()
    [k2] = own_runs(second)
    from dnn2ui.live import shared_gate
    if shared_gate().max_running == 1:
        assert reg.view(k2).snapshot().state == "queued" and reg.view(k2).snapshot().queue_position == 1
        assert "position 1" in text(second)
        # the same learner may not queue a second run behind the first
        second.slider(key="mnist.epochs").set_value(2).run()
        second.button(key="mnist.start").click().run()
        assert any("waiting" in e.value for e in second.error)
        assert own_runs(second) == [k2]
    assert k1 != k2
    reg.stop(k1)
    deadline = time.time() + 30
    while time.time() < deadline:
        rec1 = reg.store.get(k1)  # one read per look: the record can vanish between two
        if rec1 is None or not rec1.live:
            break
        time.sleep(0.1)
    rec1 = reg.store.get(k1)  # stopped before its first epoch: nothing was kept, the key is free again
    assert rec1 is None or rec1.state == "stopped"
    assert finished(k2, 120).state == "done"


def test_stop_pressed_in_the_queue_view_stops_a_run_admitted_meanwhile(no_local_data):
    first = page(n="4000", epochs="20", batch="16", models="CNN")
    second = page(n="4000", epochs="20", batch="16", models="CNN", seed="9")
    first.button(key="mnist.start").click().run()
    [k1] = own_runs(first)
    second.button(key="mnist.start").click().run()
    [k2] = own_runs(second)
    from dnn2ui.live import shared_gate
    reg = run_registry()
    if shared_gate().max_running == 1:
        assert second.session_state["_runs.on_screen"] == {k2: "queued"}  # the queue view, with its Stop
    reg.stop(k1)
    deadline = time.time() + 60
    while time.time() < deadline and reg.view(k2).snapshot().state == "queued":
        time.sleep(0.1)
    assert reg.view(k2).snapshot().state == "running"  # admitted while its tab still shows the queue
    [stop] = [b for b in second.button if b.label == "Stop"]
    stop.click().run()  # the learner presses the Stop they see
    deadline = time.time() + 30
    while time.time() < deadline:
        rec = reg.store.get(k2)
        if rec is None or not rec.live:
            break
        time.sleep(0.1)
    rec = reg.store.get(k2)  # stopped (kept from its first epoch on), or gone when stopped before it
    assert rec is None or rec.state == "stopped", rec


def test_bad_digit_upload_gets_a_message(no_local_data):
    at = page(n="500", epochs="1", models="Dense")
    at.button(key="mnist.start").click().run()
    finished(own_runs(at)[0], 120)
    at.run()
    at.radio(key="mnist.digit_src").set_value("Upload a picture").run()
    at.file_uploader(key="mnist.upload").set_value(("digit.png", b"not a picture", "image/png")).run()
    assert not at.exception
    assert any("not an image" in e.value for e in at.error)
    assert qp(at, "models") == "Dense"  # nothing lost
