# Gallery Pipeline — every target sets up what it needs first; `make setup` is idempotent and quick when done.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NODE := node_modules/.installed
TLS_DIR := .devstack/tls
TLS_CERT := $(TLS_DIR)/cert.pem
APT_STAMP := .devstack/.apt-installed
PYTEST_ARGS ?=
CHAOS_ARGS ?=

.PHONY: help setup test lint bench chaos demo run clean

help:
	@echo "make demo   - start the local Azure stack and publish a sample VHD end to end"
	@echo "make test   - set everything up and run the whole test suite"
	@echo "make lint   - ruff, mypy and checkov (offline, over infra/)"
	@echo "make bench  - speed and memory benchmarks, written to docs/benchmarks.md"
	@echo "make chaos  - reliability suite: kills, faults, duplicates (CHAOS_ARGS='--seeds 10'); docs/reliability.md"
	@echo "make run    - run the local Azure stack in the foreground (Ctrl-C stops it)"
	@echo "make setup  - create .venv, install apt/npm/pip packages and the devstack TLS certificate"

setup: $(APT_STAMP) $(STAMP_PY) $(STAMP_NODE) $(TLS_CERT)

# System packages: qemu-img (VHD fixtures) and chromium (the status page's headless browser test,
# tests/pipeline/test_status_ui.py). Each is installed only when missing; re-checked when the
# Makefile changes (a machine set up before chromium was listed gets it).
$(APT_STAMP): Makefile
	@mkdir -p .devstack
	@MISSING=""; \
	command -v qemu-img >/dev/null 2>&1 || MISSING="$$MISSING qemu-utils"; \
	command -v chromium >/dev/null 2>&1 || MISSING="$$MISSING chromium"; \
	if [ -n "$$MISSING" ]; then \
	  echo "installing$$MISSING from Debian"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$MISSING >/dev/null; \
	fi
	@command -v qemu-img >/dev/null
	@command -v chromium >/dev/null
	@touch $@

$(STAMP_PY): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

$(STAMP_NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(TLS_CERT): $(STAMP_PY)
	$(PY) -m devstack.tls $(TLS_DIR)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	PYTHON_BOOTSTRAP=$(PYTHON_BOOTSTRAP) sh infra/lint/run-checkov.sh

bench: setup
	$(PY) -m bench

# The reliability suite on the whole local stack, about 5 minutes per seed (not part of `make
# test`): CHAOS_ARGS='--seeds 10' or '--seed 7 --requests 48'. Files in .devstack/chaos/.
chaos: setup
	$(PY) -m bench.chaos $(CHAOS_ARGS)

# Starts the local stack on free ports (files in .devstack/demo), publishes a VHD and a snapshot
# end to end, prints the final status and stops the stack. DEMO_ARGS=--keep leaves it running.
demo: setup
	$(PY) -m devstack.demo $(DEMO_ARGS)

run: setup
	$(PY) -m devstack up --foreground

clean:
	rm -rf $(VENV) node_modules .devstack .pytest_cache .mypy_cache .ruff_cache
