# The two commands: `make run` and `make test`. Everything else is for developers.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test test-fast check format docs docs-check bench components cluster-up cluster-down release clean help

help:
	@echo "make run         start the service on 127.0.0.1:8080 (local executor, SQLite, local registry)"
	@echo "make test        the whole suite with real components (installs and starts what it needs)"
	@echo "make test-fast   unit tests only, no daemons"
	@echo "make check       ruff format --check, ruff check, mypy --strict, import rules"
	@echo "make docs        build the docs (warnings are errors)"
	@echo "make bench       run the benchmarks in bench/"
	@echo "make cluster-up  start the single-node test Kubernetes cluster (tests/cluster)"
	@echo "make release REGISTRY=host[/path] VERSION=x.y.z [BASE_IMAGE=image]"
	@echo "                 build and push both images and the chart (oci://REGISTRY/charts)"

$(STAMP): pyproject.toml scripts/ensure-python.sh
	scripts/ensure-python.sh $(VENV)
	@touch $@

run: $(STAMP)
	scripts/run.sh

components:
	scripts/ensure-docker.sh
	scripts/ensure-base-image.sh
	scripts/ensure-buildkit.sh
	scripts/ensure-repo2docker.sh 2024.7.0 >/dev/null
	scripts/ensure-test-tools.sh
	scripts/ensure-postgres.sh bindir >/dev/null
	scripts/ensure-node-deps.sh

test: $(STAMP) check docs-check components
	PY=$(PY) scripts/run-tests.sh $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy docs/layout.py
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -E -W --keep-going -n -q -b html docs docs/_build/html

docs-check: docs
	$(PY) -m jobs.settings.docs --check docs/configuration.md
	$(PY) -m jobs.settings.schema --check chart/values.schema.json
	$(PY) chart/values_docs.py --check docs/helm-values.md
	$(PY) -m jobs.repo2docker --check chart/files/repo2docker_config.py
	$(PY) -m jobs.repo2docker.failures_docs --check docs/overview.md
	$(PY) docs/layout.py --check docs/development.md

bench: $(STAMP) components
	$(PY) -m bench.run

cluster-up:
	tests/cluster/up.sh

cluster-down:
	tests/cluster/down.sh

# The images and the chart, one version (scripts/release.sh says what each variable does).
REGISTRY ?=
VERSION ?=
BASE_IMAGE ?=
release:
	REGISTRY="$(REGISTRY)" VERSION="$(VERSION)" BASE_IMAGE="$(BASE_IMAGE)" scripts/release.sh

clean:
	rm -rf $(VENV) docs/_build .run
