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

.PHONY: help install system-deps synth lint typecheck test golden bench bench-report bench-runner demo clean
.PHONY: image push

help:
	@echo "make install      create .venv from Pipfile.lock"
	@echo "make synth        synthesize the stack (config/example.json unless LTR_ENV/LTR_CONFIG)"
	@echo "make test         install what is missing, lint, run the whole suite"
	@echo "make demo         deploy to a local AWS emulator, run the nightly jobs, print the report"
	@echo "make lint         ruff, ruff format --check, hadolint, mypy"
	@echo "make golden       rewrite the golden files after an intended output change (review git diff)"
	@echo "make bench        run the benchmarks in bench/"
	@echo "make image APP=path/to/laravel-app [TAG=...]   build the runner image (needs Docker buildx)"
	@echo "make push [TAG=...] [REPO=...]                  push it to the stack's ECR repository"

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
	$(VENV)/bin/mypy

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

# The runner image, exactly as Lambda and Fargate accept it (docs/deploying.md): built from the
# repository root with the Laravel app as the build context, for linux/amd64 (the function and the
# task are x86_64; an Apple-silicon build would be arm64), and without buildx provenance
# attestations, which turn the image into an image index that Lambda rejects.
IMAGE_NAME ?= ltr-runner
IMAGE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
TAG ?= $(IMAGE_VERSION)
STACK_DIR ?= cdktf.out/stacks/lambda-test-runner
# The stack's `repository_url` output once the repository exists (or pass REPO=...). Terraform
# prints warnings on stdout (e.g. "No outputs found"): keep only a line shaped like an ECR URL.
ECR_URL_PATTERN := ^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]*$$
REPO ?= $(shell terraform -chdir=$(STACK_DIR) output -no-color -raw repository_url 2>/dev/null | grep -E '$(ECR_URL_PATTERN)')
REGISTRY = $(firstword $(subst /, ,$(REPO)))
# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<name>: the region is the host's fourth label.
REPO_REGION = $(word 4,$(subst ., ,$(REGISTRY)))

image:
	$(if $(APP),,$(error make image: set APP=path/to/laravel-app, the Laravel app's root directory (the one with composer.json)))
	@test -f $(APP)/composer.json || { echo "make image: $(APP)/composer.json not found: APP must be the Laravel app's root directory" >&2; exit 2; }
	docker buildx build --platform linux/amd64 --provenance=false --build-context runner=runner_image/runner -f runner_image/Dockerfile --build-arg IMAGE_VERSION=$(IMAGE_VERSION) -t $(IMAGE_NAME):$(TAG) --load $(APP)

push:
	$(eval REPO := $(REPO))
	$(if $(REPO),,$(error make push: no repository URL. Create the repository first (docs/deploying.md) so that `terraform output repository_url` in $(STACK_DIR) has it, or pass REPO=<account>.dkr.ecr.<region>.amazonaws.com/<name>))
	$(if $(shell echo '$(REPO)' | grep -E '$(ECR_URL_PATTERN)'),,$(error make push: REPO=$(REPO) is not an ECR repository URL like <account>.dkr.ecr.<region>.amazonaws.com/<name>))
	aws ecr get-login-password --region $(REPO_REGION) | docker login --username AWS --password-stdin $(REGISTRY)
	docker tag $(IMAGE_NAME):$(TAG) $(REPO):$(TAG)
	docker push $(REPO):$(TAG)
	@echo "pushed $(REPO):$(TAG); deploy it with \"image\": {\"tag\": \"$(TAG)\"} in config/<env>.json"

clean:
	rm -rf cdktf.out .pytest_cache .ruff_cache .hypothesis
