"""Streamlit's per-run Keras reset is switched off: training threads keep their Keras state."""

from __future__ import annotations

from dnn2ui.runtime import protect_keras_state


def test_streamlit_no_longer_clears_the_keras_session():
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    assert protect_keras_state() is True
    first = keras.layers.Dense(1).name
    script_runner._clean_problem_modules()  # what Streamlit calls after every script run
    second = keras.layers.Dense(1).name
    # clear_session() would restart layer auto-naming ("dense" twice); without it names go on
    assert first != second


def test_app_and_every_page_install_the_protection():
    from conftest import ROOT

    assert "protect_keras_state()" in (ROOT / "app.py").read_text()
    assert "protect_keras_state()" in (ROOT / "dnn2ui" / "router.py").read_text()


def test_expiring_closed_sessions_is_harmless_without_a_server():
    from dnn2ui.runtime import expire_disconnected_sessions

    assert expire_disconnected_sessions() == 0  # no Streamlit runtime in a unit test


def test_quiet_hooks_run_when_a_job_is_stored(tmp_path):
    import numpy as np
    import keras

    from dnn2core.jobs import JobRegistry
    from dnn2core.runs import RunSpec, RunStore
    from dnn2core.training import Budget, JobGate, ModelRun

    calls = []
    reg = JobRegistry(RunStore(tmp_path), JobGate(1))
    reg.quiet_hooks.append(lambda: calls.append(1))

    def build():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    x = np.zeros((8, 2), np.float32)
    spec = RunSpec("mnist", {"seed": 0})
    reg.start(spec, lambda: [ModelRun("m", build, dict(x=x, y=x[:, :1], epochs=1))], budget=Budget(), seed=0,
              label="t", session="s")
    assert reg.wait(spec.key, 60).state == "done"
    deadline = __import__("time").time() + 10
    while not calls and __import__("time").time() < deadline:
        __import__("time").sleep(0.1)
    assert calls


def test_an_idle_registry_collects_only_when_something_was_freed(tmp_path, monkeypatch):
    """A full collection holds the GIL (long, with TensorFlow loaded): an idle server must not run one
    every half minute for nothing, and a registry nobody holds must let its thread end."""
    import gc
    import time
    import weakref

    from dnn2core import jobs
    from dnn2core.jobs import JobRegistry
    from dnn2core.runs import RunStore
    from dnn2core.training import JobGate

    collected = []
    monkeypatch.setattr(jobs, "collect_garbage", lambda: collected.append(1))
    monkeypatch.setattr(jobs, "QUIET_COLLECT_S", 0.0)
    reg = JobRegistry(RunStore(tmp_path), JobGate(1))
    freed = [0]
    reg.quiet_hooks.append(lambda: freed[0])
    reg._sync_round()
    reg._sync_round()
    assert collected == []  # nothing freed: no collection
    freed[0] = 3  # e.g. three closed tabs' sessions expired
    reg._sync_round()
    assert collected == [1]
    thread, ref = reg._thread, weakref.ref(reg)
    del reg
    gc.collect()
    assert ref() is None
    thread.join(5)
    assert not thread.is_alive()


def test_config_files_are_polled_rarely():
    from streamlit.watcher import polling_path_watcher

    from conftest import ROOT
    from dnn2ui.runtime import CONFIG_POLL_S, slow_config_polling

    before = polling_path_watcher._POLLING_PERIOD_SECS
    try:
        assert slow_config_polling() is True
        assert polling_path_watcher._POLLING_PERIOD_SECS == CONFIG_POLL_S == 5.0
    finally:
        polling_path_watcher._POLLING_PERIOD_SECS = before
    assert "slow_config_polling()" in (ROOT / "app.py").read_text()
