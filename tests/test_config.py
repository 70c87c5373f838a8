"""Guards the classroom-safe server settings and the project layout a newcomer relies on."""

from __future__ import annotations

import tomllib

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
