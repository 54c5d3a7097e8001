# The two README commands: `make demo` and `make test`. Both set up everything they need.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck fmt install bench clean

$(BIN)/python:
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found (cryptoarena needs Python 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Pinned dependencies from requirements.lock; torch==2.13.0 is the CPU build on this disk.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]' --config-settings editable_mode=strict
	touch $@

# Strict editable installs map files one by one: refresh the map so new modules are seen.
install: $(STAMP)
	@$(BIN)/pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=strict >/dev/null

demo: install
	$(BIN)/arena demo

lint: install
	$(BIN)/ruff check src flows tests bench
	$(BIN)/ruff format --check src flows tests bench

typecheck: install
	$(BIN)/mypy -p cryptoarena

fmt: install
	$(BIN)/ruff format src flows tests bench
	$(BIN)/ruff check --fix src flows tests bench

test: install lint typecheck
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Every benchmark (minutes; never part of the tests). Results go in docs/benchmarks.md by hand.
BENCHES := bars exchange journal model trading serving
bench: install
	@for b in $(BENCHES); do echo "== bench.$$b"; $(BIN)/python -m bench.$$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
