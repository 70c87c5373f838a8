"""AppTest of the instructor page: off without DNN2_INSTRUCTOR_KEY; a wrong key shows nothing but a
rate-limited error; the right key lists another session's running job and stops it, pauses new
trainings (the MNIST page refuses Start), changes the training slots and pushes a link."""

from __future__ import annotations

import time
import uuid

import pytest
from streamlit.testing.v1 import AppTest

from conftest import APP, open_page, own_runs, qp, run_registry
from dnn2core import classroom, data, experiments
from dnn2core.runs import RunSpec

pytestmark = pytest.mark.timeout(400)


class Clock:
    """The key guard's clock, held still so the test does not depend on how fast the machine runs."""

    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def key(monkeypatch):
    """A fresh key for each test (the guard is per server process and key), with a frozen clock."""
    from dnn2ui import classroom_ui

    value = "k-" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("DNN2_INSTRUCTOR_KEY", value)
    clock = Clock()
    classroom_ui.guard().clock = clock
    return value, clock


def instructor(key: str | None = None) -> AppTest:
    at = open_page("pages/instructor.py")
    if key is not None:
        at.text_input(key="instructor.key").input(key).run()
        assert not at.exception, at.exception
        assert "Runs training and waiting" in [s.value for s in at.subheader], [e.value for e in at.error]
    return at


def app_home(**params) -> AppTest:
    """The app through app.py (its first run): navigation, banners and short links live there."""
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def nothing_shown(at: AppTest) -> bool:
    return not (at.subheader or at.dataframe or at.button or at.toggle or at.number_input or at.selectbox
                or at.get("image") or at.code)


def test_the_page_is_off_without_a_key(monkeypatch):
    monkeypatch.delenv("DNN2_INSTRUCTOR_KEY", raising=False)
    at = app_home()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/instructor.py")  # not in the navigation at all
    page = AppTest.from_file(str(APP).replace("app.py", "pages/instructor.py"), default_timeout=60).run()
    assert [i.value for i in page.info] == [
        "The instructor page is off: start the server with DNN2_INSTRUCTOR_KEY set to a key of your choice."]
    assert not page.text_input and nothing_shown(page)


def test_with_a_key_it_is_in_the_navigation_and_asks_for_it(key):
    at = app_home()
    at.switch_page("pages/instructor.py").run()
    assert [t.value for t in at.title] == ["Instructor"]
    assert [t.key for t in at.text_input] == ["instructor.key"] and nothing_shown(at)


def test_a_wrong_key_shows_nothing_but_an_error_and_is_rate_limited(key):
    value, clock = key
    at = instructor()
    at.text_input(key="instructor.key").input("guess").run()
    assert [e.value for e in at.error] == ["Wrong key. Wait 5 s before the next try."] and nothing_shown(at)
    at.run()  # a rerun with the same text is not a second try
    assert [e.value for e in at.error] == ["Wrong key. Wait 5 s before the next try."]
    at.text_input(key="instructor.key").input(value).run()  # the right key, too early: not even compared
    assert [e.value for e in at.error] == ["Locked after wrong keys: this try was not checked. Wait 5 s before the next try."]
    assert nothing_shown(at)
    clock.t += 5
    at.text_input(key="instructor.key").input("guess2").run()
    assert [e.value for e in at.error] == ["Wrong key. Wait 10 s before the next try."]  # twice as long
    # another tab does not start afresh once the server-wide limit is reached (5 wrong keys in a row)
    for _ in range(4):
        clock.t += 60
        other = instructor()
        other.text_input(key="instructor.key").input(f"g{uuid.uuid4().hex[:4]}").run()
    fresh = instructor()
    fresh.text_input(key="instructor.key").input(value).run()
    assert [e.value for e in fresh.error] == ["Locked after wrong keys: this try was not checked. Wait 5 s before the next try."]
    clock.t += 60
    fresh.run()  # the lock has passed: the key is checked and the panel opens
    assert "Runs training and waiting" in [s.value for s in fresh.subheader] and not fresh.error


def _start_other_learners_run():
    """A long run started by another session (as test_workers.py starts one), running before we look."""
    mnist = data.load_mnist().data
    settings = experiments.mnist_settings(models=["CNN"], api="sequential", epochs=20, batch=16, opt="adam",
                                          lr=0.001, n=4000, val=0.1, seed=77)
    spec = RunSpec("mnist", settings, data="instructor-test", version=experiments.MNIST_VERSION)
    reg = run_registry()
    view, started = reg.start(spec, lambda: experiments.mnist_runs(mnist, settings), budget=experiments.mnist_budget(),
                              seed=77, label="another learner's CNN", session="another-learner")
    assert started
    deadline = time.time() + 240  # running, with one epoch done: a stopped run then keeps its history
    while time.time() < deadline and reg.view(spec.key).snapshot().models["CNN"].epoch < 1:
        time.sleep(0.2)
    assert reg.store.get(spec.key).state == "running"
    return spec.key


def test_the_right_key_lists_another_sessions_running_job_and_stops_it(no_local_data, key):
    run_key = _start_other_learners_run()
    at = instructor(key[0])
    [table] = at.dataframe
    frame = table.value
    row = frame[frame["run"] == run_key[:8]].iloc[0]
    assert (row["experiment"], row["state"]) == ("mnist", "running")
    assert "epochs=20" in row["settings"] and "models=CNN" in row["settings"] and "n=4000" in row["settings"]
    assert row["device"].startswith(("CPU", "GPU"))  # the worker said where it trains
    assert row["elapsed"] != "estimating…"
    at.button(key=f"instructor.stop.{run_key}").click().run()
    rec = run_registry().wait(run_key, 60)
    assert rec.state == "stopped" and 1 <= rec.metrics["CNN"]["epochs"] < 20  # within a batch, history kept
    at.run()
    assert not at.dataframe or run_key[:8] not in set(at.dataframe[0].value["run"])


def test_pause_refuses_start_on_the_mnist_page_with_a_message(no_local_data, key):
    at = instructor(key[0])
    at.toggle(key="instructor.pause").set_value(True).run()
    store = run_registry().store
    assert classroom.paused(store) is not None
    assert any("Paused" in w.value for w in at.warning)
    home = app_home()  # every page of the app shows the banner
    assert any("paused new trainings" in w.value for w in home.warning)
    learner = open_page("pages/mnist.py", n="500", epochs="1", models="Dense")
    assert any("New trainings are paused by the instructor." in c.value for c in learner.caption)
    learner.button(key="mnist.start").click().run()
    assert [e.value for e in learner.error] == ["Not started: " + classroom.PAUSED_WORDS]  # (⏸ is its icon)
    assert store.runs("mnist", include_reference=False) == [] and own_runs(learner) == []
    at.toggle(key="instructor.pause").set_value(False).run()
    assert classroom.paused(store) is None
    learner.run()
    assert not any("paused" in c.value for c in learner.caption)
    assert not any("paused new trainings" in w.value for w in app_home().warning)


def test_the_slots_change_the_servers_gate_live(key):
    from dnn2ui.live import shared_gate

    gate = shared_gate()
    before = gate.max_running
    try:
        at = instructor(key[0])
        assert at.number_input(key="instructor.slots").value == before
        at.number_input(key="instructor.slots").set_value(before + 2).run()
        assert gate.max_running == before + 2
        assert f"{before + 2} training slot(s)" in " ".join(c.value for c in at.caption)
    finally:
        gate.set_max_running(before)


def test_a_pushed_link_shows_a_qr_code_and_short_url_and_opens_for_learners(no_local_data, key):
    at = instructor(key[0])
    at.selectbox(key="instructor.push_page").set_value("mnist").run()
    at.text_input(key="instructor.push_link.mnist").input(
        "http://class:8501/mnist?epochs=3&n=500&models=Dense&u=0123456789abcdef").run()
    at.button(key="instructor.push").click().run()
    assert not at.error, [e.value for e in at.error]
    link = classroom.parse_link("mnist?epochs=3&n=500&models=Dense", {"mnist"})
    [code] = at.code
    assert code.value == f"/?go={link.id}"  # AppTest has no address; a browser's host and port lead it
    assert len(at.get("image")) == 1  # the QR code
    # a learner's page shows the banner; a short link opens the page with those settings
    home = app_home()
    assert any("Your instructor shares an experiment: **MNIST: dense vs CNN**" in i.value for i in home.info)
    home.button(key="_classroom.go").click()
    home._page_hash, home._finished_page_script_hash = None, ""  # through app.py again, where the banner lives
    home.run()
    assert [t.value for t in home.title] == ["MNIST: dense vs CNN"] and qp(home, "epochs") == "3"
    opened = app_home(go=link.id)
    assert [t.value for t in opened.title] == ["MNIST: dense vs CNN"]
    assert (qp(opened, "epochs"), qp(opened, "n"), qp(opened, "models")) == ("3", "500", "Dense")
    assert "u" not in opened.query_params or qp(opened, "u") != "0123456789abcdef"  # never the instructor's secret
    unknown = app_home(go="00000000")
    assert any("not known on this server" in w.value for w in unknown.warning)
    at.button(key="instructor.unpush").click().run()
    assert classroom.current_push(run_registry().store, {"mnist", ""}) is None
    assert not any("Your instructor shares" in i.value for i in app_home().info)


def test_the_check_panel_shows_the_same_findings_as_make_check(shared_data_dir, key, tmp_path, monkeypatch):
    from dnn2core import check

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    at = instructor(key[0])
    at.button(key="instructor.check").click().run()
    [table] = [d for d in at.dataframe if "in plain words" in d.value.columns]
    frame = table.value.set_index(["page", "item"])
    assert frame.loc[("MNIST: dense vs CNN", "mnist"), "status"] == "ok"
    assert frame.loc[("Cats vs dogs & VGG16", "vgg16"), "status"] == "missing"
    assert frame.loc[("This server", "downloads"), "status"] == "skipped"
    assert frame.loc[("This server", "tensorflow"), "in plain words"].startswith("TensorFlow ")
    expected = {(f.page, f.item): f.status for f in check.run_checks(tensorflow=False)
                if f.item not in ("gpu", "tensorflow", "disk", "memory")}
    assert {k: v for k, v in frame["status"].items() if k in expected} == expected
    missing = len([s for s in frame["status"] if s not in ("ok", "info", "skipped")])
    assert any(f"{missing} item(s) missing, stand-ins or low." == w.value for w in at.warning)
