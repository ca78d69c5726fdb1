# One command to set up and run the demo, one to set up and run the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-postgres lint install browser bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ladder demo

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Every test on SQLite, then the store, knowledge, job and server suites again on a real PostgreSQL
# with pgvector that the tests start themselves (the pgserver package; nothing to install by hand).
PG_SUITES := tests/store tests/models/test_registry_and_store.py tests/knowledge tests/tuning tests/evals tests/queue tests/server

test: $(STAMP) browser
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -q
	$(BIN)/pytest -q -m "not slow and not sqlite_only" --database postgresql $(PG_SUITES)

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

test-postgres: $(STAMP)
	$(BIN)/pytest -q -m "not sqlite_only" --database postgresql $(PG_SUITES)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
