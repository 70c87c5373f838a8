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
