"""Guards the classroom-safe server settings and the project layout a newcomer relies on."""

from __future__ import annotations

import tomllib

import pytest

from conftest import ROOT


def test_streamlit_config_is_classroom_safe():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server, client = cfg["server"], cfg["client"]
    assert server["maxUploadSize"] <= 10
    assert server["enableXsrfProtection"] is True
    assert server["enableStaticServing"] is False
    assert server["fileWatcherType"] == "none"
    assert server["headless"] is True
    assert client["showErrorDetails"] in ("type", "none", False)
    assert client["toolbarMode"] == "viewer"
    assert cfg["browser"]["gatherUsageStats"] is False
    # A forced full gc after every rerun starves training threads (27x with 3 queued tabs).
    assert cfg["runner"]["postScriptGC"] is False


def test_upload_cap_matches_helper():
    from dnn2core import uploads
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert uploads.MAX_UPLOAD_BYTES == cfg["server"]["maxUploadSize"] * 1024 * 1024


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make run", "make test"]


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_requirements_have_lower_bounds_only():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert ">=" in line and "==" not in line and "<" not in line.replace("<=", ""), line


def test_server_settings_have_one_reader_that_names_the_variable_when_a_value_is_wrong(monkeypatch):
    from dnn2core.env import env_flag, env_number, env_text
    from dnn2core.jobs import learner_limits
    from dnn2core.training import Budget

    monkeypatch.setenv("DNN2_X", " 7 ")
    assert env_number("DNN2_X", 1, whole=True) == 7 and env_text("DNN2_X") == "7"
    monkeypatch.setenv("DNN2_X", "")
    assert env_number("DNN2_X", 2.5) == 2.5 and env_text("DNN2_X", "d") == "d" and not env_flag("DNN2_X")
    for raw, kw, words in (("seven", dict(whole=True), "whole number"), ("nan", {}, "finite"),
                           ("0", dict(above=0), "above 0"), ("-1", dict(minimum=0), "at least 0"),
                           ("99", dict(maximum=64), "at most 64")):
        monkeypatch.setenv("DNN2_X", raw)
        with pytest.raises(ValueError, match=f"DNN2_X must be .*{words}"):
            env_number("DNN2_X", 1, **kw)
    monkeypatch.setenv("DNN2_X", "maybe")
    with pytest.raises(ValueError, match="DNN2_X must be 1 or 0"):
        env_flag("DNN2_X")
    # the settings a class runs on no longer fall back silently when mistyped
    monkeypatch.setenv("DNN2_JOB_SECONDS", "half an hour")
    with pytest.raises(ValueError, match="DNN2_JOB_SECONDS"):
        Budget.from_env()
    monkeypatch.setenv("DNN2_JOB_SECONDS", "900")
    assert Budget.from_env().max_seconds == 900.0
    monkeypatch.setenv("DNN2_LEARNER_QUEUED", "2")
    assert learner_limits() == (1, 2)
    monkeypatch.setenv("DNN2_LEARNER_QUEUED", "two")
    with pytest.raises(ValueError, match="DNN2_LEARNER_QUEUED"):
        learner_limits()
