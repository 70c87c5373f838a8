"""The deployment files say what the README says: two replicas behind a sticky proxy that upgrades
websockets, one Ray head, one shared run store, and the cluster's packages kept out of `make run`."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT

DEPLOY = ROOT / "deploy"


def test_compose_runs_two_replicas_a_ray_head_and_a_proxy_on_one_store():
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with Ray (requirements-cluster.txt)")
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    assert {"ray-head", "web1", "web2", "proxy"} <= set(services)
    for web in ("web1", "web2"):
        assert services[web]["environment"]["DNN2_RAY_ADDRESS"].startswith("ray://ray-head:")
        assert "runs:/runs" in services[web]["volumes"]
    assert "runs:/runs" in services["ray-head"]["volumes"]  # the Ray tasks write the same store
    assert "--head" in services["ray-head"]["command"]


def test_nginx_keeps_a_learner_on_one_replica_and_upgrades_the_websocket():
    conf = (DEPLOY / "nginx.conf").read_text()
    assert "ip_hash;" in conf and re.search(r"server web1:8501;\s+server web2:8501;", conf)
    assert "proxy_set_header Upgrade $http_upgrade;" in conf and "proxy_http_version 1.1;" in conf


def test_ray_stays_out_of_the_dashboards_requirements():
    runtime = (ROOT / "requirements.txt").read_text()
    cluster = (ROOT / "requirements-cluster.txt").read_text()
    assert not re.search(r"^ray\b", runtime, re.M) and re.search(r"^ray>=2\.\d+", cluster, re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: install-cluster", makefile, re.M) and re.search(r"^run: install$", makefile, re.M)
