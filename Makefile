# jupyter-mlops: `make demo` and `make test` each set everything up on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKSPACE ?= $(CURDIR)/mlops-workspace
PYTEST_ARGS ?=
# Test processes (pytest-xdist) for tests/: most tests wait on processes they started, so two keep both cores busy;
# PYTEST_WORKERS=0 runs them in this process. The tutorials run afterwards, in order, in one process (each builds
# on the workspace the one before it left).
PYTEST_WORKERS ?= 2
# The JupyterLab extension: TypeScript in labextension/, built into jupyter_mlops/labextension (node + jlpm).
LABEXT_BUILT := jupyter_mlops/labextension/package.json
LABEXT_SOURCES := labextension/src labextension/style labextension/schema labextension/package.json jupyter_mlops/server/openapi.yaml
JLPM := cd labextension && PATH="$(CURDIR)/$(BIN):$$PATH" jlpm
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: venv demo test lint format lab bench services clean labextension labextension-test chromium docker

venv: $(STAMP) labextension

# Re-installs only when pyproject.toml changes; an up-to-date venv costs nothing. The install builds the
# labextension when it is missing (hatch-jupyter-builder) and installs it with the server extension's config.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

# Rebuilds the frontend when its sources are newer than the build (pip builds it only when missing), and
# refreshes the venv's copy the way pip's shared-data installs it (no `labextension develop` symlink: pip would
# write install.json through it into the build folder), so that a reload of JupyterLab shows it.
LABEXT_INSTALLED := $(VENV)/share/jupyter/labextensions/jupyter-mlops
labextension: $(STAMP)
	@if [ ! -f $(LABEXT_BUILT) ] || [ -n "$$(find $(LABEXT_SOURCES) -newer $(LABEXT_BUILT) -print -quit)" ]; then \
	  echo "Building the labextension..."; \
	  ( $(JLPM) install --silent ) && ( $(JLPM) build ) || exit 1; \
	  touch $(LABEXT_BUILT); \
	  rm -rf $(LABEXT_INSTALLED) && cp -r jupyter_mlops/labextension $(LABEXT_INSTALLED) && \
	  cp labextension/install.json $(LABEXT_INSTALLED)/; \
	fi

demo: venv
	MLOPS_WORKSPACE=$(WORKSPACE) $(BIN)/python scripts/demo.py

# eslint + prettier and the vitest unit tests of the frontend.
labextension-test: labextension
	$(JLPM) lint
	$(JLPM) test

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(JLPM) lint:fix

# PostgreSQL backs the shared-store tests (an mlflow server on it); the tests start and stop their own cluster.
services:
	@scripts/ensure-postgres

# Debian's chromium drives the browser tests (tests/ui/); they are skipped, saying why, without it.
chromium:
	@scripts/ensure-chromium

# A private Docker engine and a cached Debian Python base image for the packaging and container tests (skipped,
# saying why, without one).
docker:
	@scripts/ensure-docker

test: venv lint services chromium docker labextension-test
	@status=0; \
	$(BIN)/python -m pytest tests -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS) || status=1; \
	$(BIN)/python -m pytest notebooks --nbval-lax $(PYTEST_ARGS) || status=1; \
	exit $$status

lab: venv
	MLOPS_WORKSPACE=$(WORKSPACE) $(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 $(ALLOW_ROOT)

# Every benchmark prints its figures next to its reference; the exit status says whether all targets were met.
bench: venv
	@status=0; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || status=1; done; exit $$status

clean:
	rm -rf $(VENV) mlops-workspace .pytest_cache .ruff_cache
	rm -rf labextension/node_modules labextension/lib labextension/tsconfig.tsbuildinfo jupyter_mlops/labextension
