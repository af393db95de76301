# Two entry points matter: `make demo` and `make test`. Both build the virtualenv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHELL  := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# pip's noise about absent local mirrors is filtered; its exit status is kept (pipefail).

.PHONY: demo test lint typecheck unit bench clean venv

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "pip==25.3" 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/pip check > /dev/null
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/avdata-hil demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy shared vehicle cloud_ingest downstream simulator_harness hil tests bench

unit: $(STAMP)
	$(BIN)/pytest -q -rs

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .mypy_cache .ruff_cache
