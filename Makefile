# anna-notify — the two commands that matter: `make demo` and `make test`.
# Everything this file needs it installs itself, pinned, into the project (.venv, target/).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
MOTO_VERSION := 5.2.5
MOTO := $(VENV)/bin/moto_server
CARGO ?= cargo

export ANNA_MOTO_SERVER := $(abspath $(MOTO))

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(MOTO):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)'

.PHONY: tools
tools: $(MOTO) ## Install the local emulator (moto) into .venv

.PHONY: build-local
build-local:
	$(CARGO) build --quiet --bin anna-local --bin wa-sim

.PHONY: up
up: tools build-local ## Start moto, wa-sim and the local runner; provision the stack
	scripts/stack up

.PHONY: down
down: ## Stop what `make up` started
	scripts/stack down

.PHONY: demo
demo: up ## Run the whole pipeline on the example spreadsheets and print every row
	scripts/stack demo

.PHONY: test
test: tools ## Unit and integration tests (start their own moto and wa-sim on free ports)
	$(CARGO) test --workspace --all-targets

.PHONY: lint
lint: ## Formatting and clippy, warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
