# whirr developer commands. `make demo` and `make test` work on a fresh machine:
# each creates the virtual environment it needs first.

VENV   ?= .venv
# The interpreter .venv is built from; see tools/python.sh for how it is chosen.
PYTHON ?= $(shell tools/python.sh)
BIN     = $(VENV)/bin

.PHONY: setup demo test lint docs bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "no usable Python 3.11+ found (see tools/python.sh)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# compat mode: a plain path entry, no import-hook finder to load at every start-up
	$(BIN)/pip install -q -e ".[all]" --config-settings editable_mode=compat
	# bytecode now, so no command pays for compiling (some machines set PYTHONDONTWRITEBYTECODE)
	$(BIN)/python -m compileall -q whirr > /dev/null
	touch $@

## Run the main job end to end on the embedded default (SQLite): a scratch project,
## example training jobs queued, a worker draining them, the results listed.
demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash tools/demo.sh

## Run the whole test suite (lint, types, Python tests incl. PostgreSQL, Rust worker).
test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash tools/test.sh

lint: setup
	$(BIN)/ruff check whirr tests tools
	$(BIN)/ruff format --check whirr tests tools
	$(BIN)/mypy

## Regenerate docs/cli.md from the commands' --help.
docs: setup
	$(BIN)/python tools/gen_cli_docs.py
	$(BIN)/python tools/gen_event_docs.py

bench: setup
	$(BIN)/python -m compileall -q whirr > /dev/null
	$(BIN)/python tools/bench/queue.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
