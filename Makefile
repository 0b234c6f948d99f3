# modelops: `make repro` trains and evaluates; `make test` runs the suite.
# Both build .venv from pyproject.toml and the pinned .ci/constraints.txt first.

SHELL := /bin/bash
PYTHON ?= python3
INSTALLER ?= uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DVC stages run `python -m modelops.stages.*`: that python must be the venv's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-z][a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml .ci/constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "error: modelops needs Python >= 3.11 (the pinned numpy 2.4 and pandas 3.1 do);" \
	    "'$(PYTHON)' is $$($(PYTHON) -V 2>/dev/null || echo "not found"): run make with PYTHON=python3.11 or newer" >&2; \
	  exit 2; }
	$(PYTHON) -m venv $(VENV)
	@# uv downloads and installs in parallel, a fraction of pip's time on a machine with no cache
	@# (README, "Two commands"); the same pinned versions, bytecode compiled as pip does. uv does
	@# not read pip's configuration (an index mirror, certificates): INSTALLER=pip uses pip.
ifeq ($(INSTALLER),pip)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c .ci/constraints.txt -e '.[dev]'
else
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c .ci/constraints.txt uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -c .ci/constraints.txt -e '.[dev]'
endif
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv with the package and its pinned dependencies

.PHONY: repro
repro: $(STAMP) ## Run the DVC pipeline (prepare -> train -> evaluate) and show the metrics
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

.PHONY: chromium
chromium: ## Install Debian's chromium for the browser tests if missing (as root), or say how
	@[ -n "$$CHROMIUM" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	  || command -v google-chrome >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests (apt-get)"; \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "error: the browser tests need Debian's chromium: run 'sudo apt-get install chromium' (or 'make chromium' as root)" >&2; \
	    exit 2; \
	  fi; }

.PHONY: test
test: $(STAMP) chromium ## Run the whole test suite (what CI runs), a worker per core plus one
	@# Hundreds of stage and CLI processes import the package: compiled once here, not in each
	@# (none writes its own bytecode where PYTHONDONTWRITEBYTECODE is set, as on CI machines).
	$(BIN)/python -m compileall -q src >/dev/null
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

.PHONY: test-fast
test-fast: $(STAMP) ## Run the unit tests only (no git/dvc repositories, no processes)
	$(BIN)/python -m pytest -n auto -m "not e2e and not slow"

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
bench: $(STAMP) ## Run the benchmarks (under 15 min on 2 cores) and update benchmarks/RESULTS.md
	cd benchmarks && ../$(BIN)/python run_all.py

.PHONY: bench-large
bench-large: $(STAMP) ## Run the long benchmarks (scaling, experiment grid, web pages, prediction log, tuning, 10^7 rows)
	cd benchmarks && ../$(BIN)/python run_all.py --large

.PHONY: screenshots
screenshots: $(STAMP) chromium ## Re-take the README's pictures of modelops ui from a real run (.github/screenshots/)
	$(BIN)/python .ci/screenshots.py

.PHONY: vendor-js
vendor-js: ## Re-vendor the pages' chart scripts (Vega, pinned by npm sha512) into src/modelops/ui/static
	$(BIN)/python .ci/vendor_js.py

.PHONY: remote-local
# DIR, URL, ENDPOINT and REGION reach the recipes as environment variables ("$$DIR"), never
# pasted into the shell text, so a value with quotes or semicolons is only a value.
remote-local: $(STAMP) ## Use a local directory as the default DVC remote: make remote-local DIR=/path
	@test -n "$$DIR" || { echo "usage: make remote-local DIR=/path/to/storage"; exit 2; }
	@umask 077; $(BIN)/dvc remote add --local --default --force local "$$DIR"
	@chmod 600 .dvc/config.local

.PHONY: remote-s3
remote-s3: $(STAMP) ## Use S3 as the default DVC remote: make remote-s3 URL=s3://bucket/path [ENDPOINT=..] [REGION=..]
	@test -n "$$URL" || { echo "usage: make remote-s3 URL=s3://bucket/path [ENDPOINT=http://host:port] [REGION=us-east-1]"; exit 2; }
	@# The remote in .dvc/config (committed) and mirrored in .dvc/config.local; credentials
	@# only in config.local (0600, never committed), read from the environment by Python, as a
	@# command line would show them to `ps` (modelops.remote.use_s3).
	@umask 077; $(BIN)/python -c 'import sys; from modelops.remote import use_s3_command; sys.exit(use_s3_command("storage"))'
	@echo "remote 'storage' -> $$URL (credentials: .dvc/config.local or AWS_* variables)"

.PHONY: clean
clean: ## Remove the virtual environment
	rm -rf $(VENV)
