# Everything a fresh clone needs, from python3 + bash + make alone.
SHELL := bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
# Cache bytecode in .venv: without it every Dagster CLI call recompiles Dagster (seconds each).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: demo test lint ui emulator bench clean
.DEFAULT_GOAL := demo

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra dev --quiet
	touch $@

## demo: emulator with seeded data -> export into ./lake through Dagster -> summary
demo: .venv/.synced
	.venv/bin/python -m bt_pipelines.demo

## test: lint, validate the Dagster definitions (as a user's CI would), run the whole test suite
test: .venv/.synced lint
	DAGSTER_HOME=$(CURDIR) .venv/bin/dg check defs
	.venv/bin/python -m pytest

lint: .venv/.synced
	.venv/bin/ruff check bt_pipelines bt_pipelines_tests benchmarks

## ui: the Dagster UI on the same config, against a seeded emulator (Ctrl-C stops)
ui: .venv/.synced
	.venv/bin/python -m bt_pipelines.demo --ui

## bench: exporters side by side on the same emulator data (see docs/benchmarks.md)
bench: $(UV)
	$(UV) sync --frozen --extra dev --extra bench --quiet
	.venv/bin/python -m benchmarks --write

## emulator: a seeded Braintrust emulator on http://127.0.0.1:8000
emulator: .venv/.synced
	.venv/bin/bt-pipelines emulator --seed demo

clean:
	rm -rf .venv .tools .cache lake .dagster_home
