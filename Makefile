# Two entry points (see README Quick start):  `make run`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint typecheck pytest bench wrk clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

setup: $(STAMP)

## The main job end to end on the embedded default store (var/quant.duckdb).
run: $(STAMP)
	$(BIN)/quant main

## The whole test suite: lint, format check, type check, tests (notebooks included).
test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check quant models backtest feeds tests benchmarks
	$(BIN)/ruff format --check quant models backtest feeds tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP) wrk
	$(BIN)/python -m benchmarks

## wrk, the C load generator of `python -m benchmarks api` (Debian package; needs root or sudo).
wrk:
	@command -v wrk >/dev/null || { SUDO=$$(command -v sudo || true); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q wrk; }

clean:
	rm -rf $(VENV) var reports .mypy_cache .ruff_cache .pytest_cache
