# The two README commands: `make demo` and `make test`. Both set up everything they need.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# setuptools warns on every strict editable install that it made one (13 lines): we asked for it.
QUIET_PIP := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: demo test lint typecheck fmt install bench clean web web-test images-test

$(BIN)/python:
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found (cryptoarena needs Python 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Pinned dependencies from requirements.lock; torch==2.13.0 is the CPU build on this disk.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(QUIET_PIP) $(BIN)/pip install -q -c requirements.lock -e '.[dev]' --config-settings editable_mode=strict
	touch $@

# Strict editable installs map files one by one: refresh the map so new modules are seen.
install: $(STAMP)
	@$(QUIET_PIP) $(BIN)/pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=strict >/dev/null

# The web UI (Vue + Vite, web/) is built into src/dashboard/static when the built files are
# missing or older than anything in web/ (node_modules aside); `npm ci` only, from the lock file.
WEB_BUILT := src/dashboard/static/index.html
WEB_DEPS := web/node_modules/.package-lock.json
WEB_SRC := $(shell find web -path web/node_modules -prune -o -type f -print 2>/dev/null)

$(WEB_DEPS): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found (the dashboard's web UI needs Node 20 + npm)"; exit 1; }
	cd web && npm ci --no-audit --no-fund
	touch $@

$(WEB_BUILT): $(WEB_DEPS) $(WEB_SRC)
	cd web && npm run build
	touch $@

web: $(WEB_BUILT)

web-test: $(WEB_DEPS)
	cd web && npm test

# The demo: the dashboard first (its one URL line printed before anything else; a busy port
# makes it take a free one and say so), then every part on the embedded defaults; the dashboard
# stays up after the replay until Ctrl-C. DEMO_EXIT=1 (the default under CI=true) ends at once.
DASHBOARD_PORT ?= 8080
DEMO_EXIT ?= $(if $(CI),1,0)
DASHBOARD_URL_FILE := var/run/dashboard.url
demo: install web
	@rm -f $(DASHBOARD_URL_FILE); \
	$(BIN)/arena dashboard --port $(DASHBOARD_PORT) --any-free-port --url-file $(DASHBOARD_URL_FILE) & dash=$$!; \
	trap 'kill $$dash 2>/dev/null; wait $$dash 2>/dev/null' EXIT; \
	trap 'exit 130' INT TERM; \
	until [ -s $(DASHBOARD_URL_FILE) ]; do kill -0 $$dash 2>/dev/null || exit 2; sleep 0.1; done; \
	$(BIN)/arena demo || exit $$?; \
	if [ "$(DEMO_EXIT)" = 1 ]; then exit 0; fi; \
	echo "demo finished; the dashboard (URL above) stays up until Ctrl-C"; \
	wait $$dash

lint: install
	$(BIN)/ruff check src flows tests bench
	$(BIN)/ruff format --check src flows tests bench

typecheck: install
	$(BIN)/mypy -p cryptoarena

fmt: install
	$(BIN)/ruff format src flows tests bench
	$(BIN)/ruff check --fix src flows tests bench

test: install web lint typecheck web-test
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Every benchmark (minutes; never part of the tests). Results go in docs/benchmarks.md by hand.
BENCHES := bars exchange journal model trading serving dashboard
bench: install
	@for b in $(BENCHES); do echo "== bench.$$b"; $(BIN)/python -m bench.$$b || exit 1; done

# Every image of docker/compose.yaml built and run (minutes; never part of `make test`): podman on
# this machine's offline path (Debian base + wheelhouse), or ENGINE=docker on the default path.
# Builds, starts MLflow, Prefect, serving, a worker replay and the dashboard, checks them, removes
# the containers. Sizes and times: docs/benchmarks.md. See bench/images.py.
ENGINE ?= podman
images-test: install web
	ENGINE=$(ENGINE) $(BIN)/python -m bench.images $(IMAGES_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache src/dashboard/static web/node_modules
