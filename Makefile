# jupyter-mlops: `make demo` and `make test` each set everything up on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKSPACE ?= $(CURDIR)/mlops-workspace
PYTEST_ARGS ?=

.PHONY: venv demo test lint format lab bench services clean

venv: $(STAMP)

# Re-installs only when pyproject.toml changes; an up-to-date venv costs nothing.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

demo: venv
	MLOPS_WORKSPACE=$(WORKSPACE) $(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# PostgreSQL backs the shared-store tests (an mlflow server on it); the tests start and stop their own cluster.
services:
	@scripts/ensure-postgres

test: venv lint services
	$(BIN)/python -m pytest tests notebooks --nbval-lax $(PYTEST_ARGS)

lab: venv
	MLOPS_WORKSPACE=$(WORKSPACE) $(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1

bench: venv
	$(BIN)/python bench/bench_foundation.py

clean:
	rm -rf $(VENV) mlops-workspace .pytest_cache .ruff_cache
