# The README's commands. Each target creates .venv and installs what it needs on
# first use (and again whenever pyproject.toml changes).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve test lint typecheck check bench clean

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

## test: lint, type-check and run the whole test suite
test: $(VENV)/.stamp-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

## bench: benchmarks against the machine's limits, nginx and moto_server (ARGS=--quick)
bench: $(VENV)/.stamp-test
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || \
	  ((apt-get install -y -q nginx-light >/dev/null 2>&1 || \
	    (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nginx-light >/dev/null 2>&1)) && \
	   echo "installed nginx-light") || \
	  echo "nginx could not be installed: the download ceiling will be missing"
	$(BIN)/python -m bench $(ARGS)

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.stamp-test
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
