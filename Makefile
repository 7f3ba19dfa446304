# Everything a new machine needs goes through these targets; README.md documents them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
PIPENV_VERSION := 2026.10.3
VENV := .venv
PY := $(VENV)/bin/python

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_YES := 1
export PIPENV_NOSPIN := 1
export PIPENV_VERBOSITY := -1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

# typecheck joins lint once the tree is clean (issue 8).
.PHONY: help install system-deps synth lint typecheck test golden bench bench-report bench-runner demo clean

help:
	@echo "make install      create .venv from Pipfile.lock"
	@echo "make synth        synthesize the stack (config/example.json unless LTR_ENV/LTR_CONFIG)"
	@echo "make test         install what is missing, lint, run the whole suite"
	@echo "make demo         deploy to a local AWS emulator, run the nightly jobs, print the report"
	@echo "make bench        run the benchmarks in bench/"

$(VENV)/.synced: Pipfile.lock pyproject.toml
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "pipenv==$(PIPENV_VERSION)"
	$(PYTHON) -m pipenv sync --dev
	@touch $@

install: $(VENV)/.synced

system-deps:
	@bash scripts/install-system-deps.sh

synth: install
	$(PY) main.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint runner_image/Dockerfile

typecheck: install
	$(VENV)/bin/mypy

# pytest exits 5 when it collected no test; that must not fail CI on its own.
test: system-deps install lint
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests ran"; rc=0; fi; exit $$rc

# Rewrites every golden file (tests named *golden*) from the current output; review with git diff.
golden: install
	UPDATE_GOLDEN=1 $(PY) -m pytest -q -k golden $(PYTEST_ARGS)

bench: bench-report bench-runner

bench-report: install
	$(PY) bench/report_processor_bench.py

bench-runner: system-deps install
	$(PY) bench/runner_bench.py

demo: system-deps install
	$(PY) -m demo

clean:
	rm -rf cdktf.out .pytest_cache .ruff_cache .hypothesis
