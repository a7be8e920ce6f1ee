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

# The launcher that serialises moto's DynamoDB requests (scripts/moto_server.py says why).
export ANNA_MOTO_SERVER := $(abspath scripts/moto-server)

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

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
	@# The functions' binaries first: tests/integration/tests/infra.rs starts each of them.
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace --all-targets --no-fail-fast

# Fuzzing is property testing (proptest; the toolchain is stable, cargo-fuzz needs nightly):
# `make test` runs each property a few dozen times, this runs it FUZZ_CASES times. Under an
# address-space limit, so an allocation bomb aborts the test instead of exhausting the
# machine; the input being read when a process died is left in target/fuzz-last.bin.
FUZZ_CASES ?= 20000
FUZZ_API_CASES ?= 2000
FUZZ_MEMORY_KB ?= 4194304

.PHONY: fuzz
fuzz: ## Fuzz the readers, CSV sniffing, templates, webhooks, API bodies (FUZZ_CASES=20000 each)
	$(CARGO) test --no-run -p anna-shared --test fuzz_props -p anna-api --test fuzz_bodies
	@start=$$(date +%s); \
	ulimit -v $(FUZZ_MEMORY_KB); \
	ANNA_FUZZ_LAST=target/fuzz-last.bin PROPTEST_CASES=$(FUZZ_CASES) \
		$(CARGO) test -p anna-shared --test fuzz_props -- --test-threads=2; \
	PROPTEST_CASES=$(FUZZ_API_CASES) $(CARGO) test -p anna-api --test fuzz_bodies -- --test-threads=2; \
	echo "make fuzz: $(FUZZ_CASES) cases per reader property, $(FUZZ_API_CASES) per API property, $$(( $$(date +%s) - start )) s"

.PHONY: lint
lint: ## Formatting and clippy, warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# ---------------------------------------------------------------- deployment (infra/, README)
# The infrastructure tools live in their own venvs (aws-sam-cli and checkov pin conflicting
# boto3 versions), so `make test` never pays for them.
INFRA_VENV := .venv-infra
SAM_VENV := $(INFRA_VENV)/sam
CHECKOV_VENV := $(INFRA_VENV)/checkov
SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0
CARGO_LAMBDA_VERSION := 1.9.2
ZIGLANG_VERSION := 0.14.1
CHECKOV_VERSION := 3.3.30
SAM_TOOLS := $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)-$(CFN_LINT_VERSION)-$(CARGO_LAMBDA_VERSION)-$(ZIGLANG_VERSION)
CHECKOV_TOOLS := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
TEMPLATE := infra/template.yaml
# The Lambda binaries `make build` produces, one target/lambda/<binary>/bootstrap.zip each.
FUNCTIONS ?= anna-upload anna-sender anna-api anna-review
# arm64 (the template's default) or x86_64; must match the stack's Architecture parameter.
ARCH ?= arm64
LAMBDA_TARGET = $(if $(filter x86_64,$(ARCH)),x86_64-unknown-linux-gnu,aarch64-unknown-linux-gnu)
# sam, cargo-lambda and zig (`python3 -m ziglang`) from the venv, ahead of anything global.
INFRA_PATH := $(abspath $(SAM_VENV))/bin:$(PATH)

$(SAM_TOOLS):
	rm -rf $(SAM_VENV)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check \
		'aws-sam-cli==$(SAM_CLI_VERSION)' 'cfn-lint==$(CFN_LINT_VERSION)' \
		'cargo-lambda==$(CARGO_LAMBDA_VERSION)' 'ziglang==$(ZIGLANG_VERSION)'
	touch $@

$(CHECKOV_TOOLS):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check 'checkov==$(CHECKOV_VERSION)'
	touch $@

.PHONY: tools-infra
tools-infra: $(SAM_TOOLS) $(CHECKOV_TOOLS) ## Install sam, cfn-lint, checkov, cargo-lambda, zig into .venv-infra

.PHONY: lint-infra
lint-infra: $(SAM_TOOLS) $(CHECKOV_TOOLS) ## Validate infra/template.yaml: cfn-lint, sam validate --lint, checkov
	$(SAM_VENV)/bin/cfn-lint $(TEMPLATE)
	@# No credentials and no instance metadata: validation must not (and does not) call AWS.
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
		AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0 \
		bash -c '$(SAM_VENV)/bin/sam validate --region us-east-1 --template-file $(TEMPLATE) && \
		$(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template-file $(TEMPLATE)'
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --framework cloudformation \
		--skip-download --file $(TEMPLATE)

.PHONY: check-arch
check-arch:
	@case '$(ARCH)' in arm64|x86_64) ;; *) echo "ARCH must be arm64 or x86_64, not '$(ARCH)'" >&2; exit 2 ;; esac
	@triple=$(LAMBDA_TARGET); if [[ ! -d "$$(rustc --print sysroot)/lib/rustlib/$$triple" ]]; then \
	  echo "The Rust standard library for $$triple is not installed." >&2; \
	  echo "Run: rustup target add $$triple" >&2; \
	  echo "(or build with ARCH=x86_64 and deploy with the Architecture parameter x86_64)" >&2; \
	  exit 1; \
	fi

.PHONY: build
build: check-arch $(SAM_TOOLS) ## Release builds for Lambda: target/lambda/<fn>/bootstrap.zip (ARCH=arm64|x86_64)
	PATH='$(INFRA_PATH)' $(CARGO) lambda build --release --target $(LAMBDA_TARGET) \
		--output-format zip $(addprefix --bin ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do ls -l target/lambda/$$f/bootstrap.zip; done

.PHONY: deploy
deploy: check-arch $(SAM_TOOLS) ## sam build + sam deploy (guided the first time; see README, Deployment)
	@stored=$$(grep -o 'Architecture=\\"[a-z0-9_]*' infra/samconfig.toml | sed 's/.*"//' || true); \
	if [[ -n "$$stored" && "$$stored" != '$(ARCH)' ]]; then \
	  echo "infra/samconfig.toml deploys Architecture=$$stored: run make deploy ARCH=$$stored" >&2; \
	  exit 1; \
	fi
	cd infra && PATH='$(INFRA_PATH)' SAM_CLI_TELEMETRY=0 \
		sam build --parameter-overrides Architecture=$(ARCH)
	cd infra && if grep -q '^parameter_overrides' samconfig.toml; then \
	  PATH='$(INFRA_PATH)' SAM_CLI_TELEMETRY=0 sam deploy; \
	else \
	  PATH='$(INFRA_PATH)' SAM_CLI_TELEMETRY=0 sam deploy --guided --parameter-overrides Architecture=$(ARCH); \
	fi

# ---------------------------------------------------------------- measurements
.PHONY: bench
bench: tools ## Benchmarks against the targets (docs/performance.md): prints a table, writes target/bench/results.json
	@# Release builds: the figures are of the code Lambda runs, and cold start times the functions' own binaries.
	$(CARGO) build --release --quiet --bin anna-bench --bin anna-upload --bin anna-sender --bin anna-api --bin anna-review
	target/release/anna-bench run $(BENCH_ARGS)

.PHONY: soak
soak: tools ## The long fault-injection soak: 20,000 recipients (ANNA_SOAK_RECIPIENTS per dispatch × 4, ANNA_SOAK_RATE msg/s, default 20), about 30 minutes
	$(CARGO) test -p anna-integration-tests --test soak -- --ignored --nocapture long_soak
