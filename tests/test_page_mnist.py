"""AppTest of the MNIST page: a tiny live run, stop, no silent retraining, per-learner runs, queue."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import APP, qp

pytestmark = pytest.mark.timeout(400)


def page(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page("pages/mnist.py").run()
    assert not at.exception, at.exception
    return at


def text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_one_epoch_run_shows_curves_metrics_and_summary(no_local_data):
    at = page(n="500", epochs="1", seed="3")
    assert "sample" in " ".join(i.value for i in at.info)          # the embedded-sample banner
    assert "Total params: **50,890**" in text(at) and "Total params: **104,202**" in text(at)
    assert any(r"= 320" in x.value for x in at.latex)
    at.button(key="mnist.start").click().run()
    jobs = at.session_state["mnist.jobs"]
    assert len(jobs) == 1
    assert jobs[-1].join(180)
    at.run()
    assert not at.exception, at.exception
    snap = jobs[-1].snapshot()
    assert snap.state == "done"
    for name in ("Dense", "CNN"):
        mp = snap.models[name]
        assert mp.epoch == 1 and len(mp.history["val_accuracy"]) == 1
        assert 0.0 <= mp.results["test_accuracy"] <= 1.0
    assert "Finished" in text(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 6  # loss + accuracy curves, networks, confusion matrices, galleries
    accuracies = [m for m in at.metric if "test accuracy" in m.label]
    assert len(accuracies) == 2
    # a widget change re-runs the page, never the training
    at.slider(key="mnist.epochs").set_value(3).run()
    assert len(at.session_state["mnist.jobs"]) == 1
    assert qp(at, "epochs") == "3"
    code = " ".join(c.value for c in at.code)
    assert "epochs=3" in code and "layers.Conv2D(filters=32, kernel_size=3" in code


def test_stop_ends_the_run_and_keeps_history(no_local_data):
    at = page(n="4000", epochs="20", batch="16", models="CNN")
    at.button(key="mnist.start").click().run()
    job = at.session_state["mnist.jobs"][-1]
    deadline = time.time() + 120
    while time.time() < deadline and job.snapshot().models["CNN"].epoch < 1:
        time.sleep(0.2)
    at.run()  # the live panel shows the Stop button
    stop = [b for b in at.button if b.label == "Stop"]
    assert stop, "no Stop button while training"
    stop[0].click().run()
    assert job.join(30), "Stop did not end the run"
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.stop_reason == "stopped by you"
    assert snap.models["CNN"].epoch >= 1 and snap.models["CNN"].epoch < 20
    assert len(snap.models["CNN"].history["loss"]) == snap.models["CNN"].epoch
    at.run()
    assert "Stopped" in text(at)


def test_learners_do_not_see_each_others_runs_and_queue_in_order(no_local_data):
    first = page(n="4000", epochs="20", batch="16", models="CNN")
    second = page(n="500", epochs="1", models="Dense")
    first.button(key="mnist.start").click().run()
    job1 = first.session_state["mnist.jobs"][-1]
    while job1.snapshot().state == "queued":
        time.sleep(0.1)
    second.button(key="mnist.start").click().run()
    job2 = second.session_state["mnist.jobs"][-1]
    from dnn2ui.live import shared_gate
    if shared_gate().max_running == 1:
        assert job2.snapshot().state == "queued" and job2.snapshot().queue_position == 1
        assert "position 1" in text(second)
    assert len(first.session_state["mnist.jobs"]) == 1 and len(second.session_state["mnist.jobs"]) == 1
    assert job1.job_id != job2.job_id
    job1.stop()
    assert job1.join(30) and job2.join(120)
    assert job2.snapshot().state == "done"


def test_bad_digit_upload_gets_a_message(no_local_data):
    at = page(n="500", epochs="1", models="Dense")
    at.button(key="mnist.start").click().run()
    assert at.session_state["mnist.jobs"][-1].join(120)
    at.run()
    at.radio(key="mnist.digit_src").set_value("Upload a picture").run()
    at.file_uploader(key="mnist.upload").set_value(("digit.png", b"not a picture", "image/png")).run()
    assert not at.exception
    assert any("not an image" in e.value for e in at.error)
    assert qp(at, "models") == "Dense"  # nothing lost
