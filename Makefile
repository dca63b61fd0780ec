# The README's commands. Each target creates .venv and installs what it needs on
# first use (and again whenever pyproject.toml changes).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve cluster test lint typecheck check bench bench-deps clean

# bench-deps installs a system package: as root directly, otherwise through sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.stamp-run

## serve: run the server on the embedded default (SQLite + local files in ./data)
serve: $(VENV)/.stamp-run
	$(BIN)/openglacier serve $(ARGS)

## cluster: PostgreSQL database + SeaweedFS cluster + two API nodes + a worker on this
##          machine (docs/cluster.md); Ctrl-C stops it all (ARGS=--print-commands, --keep)
cluster: $(VENV)/.stamp-test
	$(BIN)/python scripts/cluster.py $(ARGS)

# The console's end-to-end tests drive chromium through Playwright (executable_path):
# Playwright's own browser download cannot run everywhere. A chromium already on
# PATH is used as it is; otherwise Debian's package is installed.
.PHONY: browser
browser:
	@if command -v chromium >/dev/null || test -x /usr/bin/chromium; then :; else \
	  echo "installing Debian's chromium for the console tests: $(SUDO) apt-get install chromium"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; \
	fi

# The suite on every core, at most four (each worker starts its own SeaweedFS),
# a test file per worker at a time: module-scoped servers start once. Most of a
# test's time is spent waiting on the processes it drives, so two workers on
# two cores take about 13 minutes where one took 17-20. PYTEST_PARALLEL= runs it
# in one process.
PYTEST_PARALLEL ?= --numprocesses auto --maxprocesses 4 --dist loadfile

## test: lint, type-check and run the whole test suite (installs chromium if missing)
test: $(VENV)/.stamp-test browser
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

## bench: benchmarks against the machine's limits, nginx and moto_server (ARGS=--quick);
##        installs no system package: it says what is missing and which figures it skips
bench: $(VENV)/.stamp-test
	$(BIN)/python -m bench $(ARGS)

## bench-deps: install nginx (Debian/Ubuntu nginx-light, with apt-get as root or through
##             sudo) for the bench's download ceiling; an explicit step, run it once
bench-deps:
	@if command -v nginx >/dev/null || test -x /usr/sbin/nginx; then \
	  echo "nginx is already installed"; \
	else \
	  echo "installing nginx-light: $(SUDO) apt-get update && $(SUDO) apt-get install nginx-light"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y nginx-light; \
	fi

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(VENV)/.stamp-test
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
