# The commands people expect: demo, test, lint, typecheck, fmt, bench, emulator, engine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The engine (CLI) release: tools/engine/version.txt; the Python SDK's pin is in requirements.txt.
PULUMI_VERSION := $(shell cat tools/engine/version.txt)
# A pulumi of the pinned version already on PATH (the official installer's) is used as it is;
# otherwise `make engine` builds one from Go modules into a cache outside the checkout.
SYSTEM_PULUMI := $(shell p=$$(command -v pulumi 2>/dev/null) && [ "$$($$p version 2>/dev/null)" = "v$(PULUMI_VERSION)" ] && dirname "$$p")
ENGINE_CACHE ?= $(or $(PULUMI_ENGINE_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/sendgrid-click-tracking/pulumi-v$(PULUMI_VERSION))
ENGINE_BIN := $(or $(SYSTEM_PULUMI),$(ENGINE_CACHE)/bin)
export PATH := $(ENGINE_BIN):$(BIN):$(PATH)
export PULUMI_ENGINE_BIN := $(ENGINE_BIN)
PYTEST_ARGS ?=
# make test runs the tests in TEST_WORKERS processes (pytest-xdist): the engine tests mostly wait on the
# engine's subprocesses, so 3 suits 2 cores (TEST_WORKERS=0: one process). Tests marked
# xdist_group("name") run one after another in one process; everything else anywhere, in any order.
TEST_WORKERS ?= 3
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadgroup --durations=20

.PHONY: help venv engine demo test unit lint typecheck fmt bench reliability emulator dist clean

help:
	@echo "make demo       the program against the local emulator (no accounts needed)"
	@echo "make test       lint, types, and every test suite, engine end-to-end included"
	@echo "make unit       the tests that need no Pulumi engine"
	@echo "make dist       the sdist and the wheel into dist/, checked (twine check --strict, package files only)"
	@echo "make lint | typecheck | fmt | bench | reliability | mutants | emulator | engine | clean"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	@# The package itself, editable: the program, tests, benchmarks and tools import it from provider/.
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

engine:
ifeq ($(SYSTEM_PULUMI),)
	@tools/engine/build.sh "$(ENGINE_CACHE)" >/dev/null
endif
	@echo "engine: $$(pulumi version) from $(ENGINE_BIN)"

demo: venv engine
	tools/demo.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy
	$(BIN)/mypy --strict -p pulumi_sendgrid_tracking

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: venv
	$(BIN)/pytest -m "not engine" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test: venv lint typecheck engine
	$(BIN)/pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

reliability: venv engine
	$(BIN)/python -m tools.reliability

# Each known defect put back (tests/mutants/*.patch) in a scratch copy: its tests must catch it.
mutants: venv engine
	$(BIN)/python -m tools.mutants

bench: venv engine
	$(BIN)/python -m bench

emulator: venv
	$(BIN)/python -u -m pulumi_sendgrid_tracking.emulator --verbose --seed tools/demo-seed.json

# dist/: the sdist and the wheel of this checkout, checked (tests/e2e/test_package.py builds a fresh clone the same way).
dist: venv
	$(BIN)/python -m tools.dist --outdir dist

clean:
	rm -rf build dist .pulumi-state .pytest_cache .mypy_cache .ruff_cache
