# DNN2 Studio. A newcomer needs two targets: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
PYTHON ?= python3
# Real datasets for tests and benchmarks (never copied into the repo): ../shared/data when present.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/README.md),)
export DNN2_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: install install-cluster run test unit e2e bench reference check prefetch clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Ray for the cluster tests (requirements-cluster.txt); the dashboard itself runs without it.
$(VENV)/.installed-cluster: $(VENV)/.installed requirements-cluster.txt
	$(PY) -m pip install --quiet -r requirements-cluster.txt
	touch $@

install-cluster: $(VENV)/.installed-cluster

## Create the venv, install, and start the dashboard headless on port $(PORT).
run: install
	$(PY) -m streamlit run app.py --server.headless true --server.port $(PORT)

## Install and run every test: the unit/AppTest suite, then the browser end-to-end run.
test: install-cluster
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory e2e

unit: install-cluster
	$(PY) -m pytest -q

## Drive every page in Debian's Chromium against a real `streamlit run` server.
e2e: install
	@command -v chromium >/dev/null || bash tests/e2e/install_chromium.sh
	$(PY) tests/e2e/run_e2e.py

## Train the course's full-length runs into the run store (DNN2_RUNS_DIR), with progress bars.
## EXPORT=assets/reference also writes them where the repository ships them (a maintainer's step).
EXPORT ?=
reference: install
	$(PY) -m dnn2core.reference $(if $(EXPORT),--export $(EXPORT))

## The pre-class check: what this server has and lacks per page. REQUIRE=mnist,vgg16 makes it exit 1
## when one of them is missing (python -m dnn2core.check --help lists the items).
REQUIRE ?=
check: install
	$(PY) -m dnn2core.check $(if $(REQUIRE),--require $(REQUIRE))

## Download every dataset and ImageNet weights file the pages can use into the Keras cache, with
## progress bars and Keras' published checksums; offline, each item fails at once with what to copy.
prefetch: install
	$(PY) -m dnn2core.prefetch

## Benchmarks print tables; their latest figures go in README.md. Not part of CI.
bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) artifacts .pytest_cache
