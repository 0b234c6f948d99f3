# modelops: `make repro` trains and evaluates; `make test` runs the suite.
# Both build .venv from pyproject.toml and the pinned .ci/constraints.txt first.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DVC stages run `python -m modelops.stages.*`: that python must be the venv's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c .ci/constraints.txt -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv with the package and its pinned dependencies

.PHONY: repro
repro: $(STAMP) ## Run the DVC pipeline (prepare -> train -> evaluate) and show the metrics
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

.PHONY: test
test: $(STAMP) ## Run the whole test suite (what CI runs)
	$(BIN)/python -m pytest

.PHONY: lint
lint: $(STAMP) ## Lint and check formatting with ruff
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

.PHONY: format
format: $(STAMP) ## Reformat the code with ruff
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

.PHONY: lock
lock: $(STAMP) ## Re-pin .ci/constraints.txt from the current .venv
	{ sed -n '1,2p' .ci/constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -viE '^(pip|setuptools|wheel)=='; } > .ci/constraints.tmp
	mv .ci/constraints.tmp .ci/constraints.txt

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks and update benchmarks/RESULTS.md
	cd benchmarks && for script in startup.py registry_list.py experiments_grid.py serving.py monitoring.py; do ../$(BIN)/python $$script || exit 1; done

.PHONY: clean
clean: ## Remove the virtual environment
	rm -rf $(VENV)
