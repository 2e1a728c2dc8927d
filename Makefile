# The README's two commands: `make run` (the whole system on this machine) and `make test`
# (every check, as CI runs it through .ci/run). The recipes live in .ci/*.sh, where bash can
# trap Ctrl-C and clean up; this file names them.
#
# Honoured from the environment: CARGO_TARGET_DIR (default target/); for `make run` also
# AWS_ENDPOINT_URL (use that endpoint, e.g. LocalStack, instead of starting moto),
# EMULATOR_PORT (moto's port, default 4566), AWS_REGION and credentials (default us-east-1 and
# test/test), LOCAL_HTTP_ADDR, LAGO_API_KEY and RESOURCE_PREFIX (read by the local runner).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := run

export SAM_CLI_TELEMETRY := 0

.PHONY: run test lint sam-build bootstrap clean-local bench lambdas

## run: the AWS emulator on 127.0.0.1:4566 and the local runner on 127.0.0.1:3000 (Ctrl-C stops both)
run:
	.ci/run-local.sh

## test: lint, sam build, Rust tests, Lago's Python and JavaScript clients against the local stack
test:
	.ci/test.sh all

## bench: AWS requests, request units and USD per million events; current-usage latency
bench:
	.ci/bench.sh

## lint: cfn-lint, sam validate --lint, rustfmt, clippy
lint:
	.ci/test.sh lint

## sam-build: build every function for arm64 Lambda into .aws-sam/build
sam-build:
	.ci/test.sh sam-build

## bootstrap: install every tool `make run` and `make test` need (.venv, node_modules, arm64 target)
bootstrap:
	.ci/bootstrap.sh test

## clean-local: stop emulators this project started, and remove local state and build output
clean-local:
	shopt -s nullglob; \
	for pid_file in .local/emulator-*.pid; do \
	  port="$${pid_file#.local/emulator-}"; \
	  .ci/emulator.sh stop "$${port%.pid}"; \
	done
	rm -rf .local .aws-sam

# --- sam build's recipes (template.yaml: `BuildMethod: makefile`, `CodeUri: .`) ------------------
# SAM runs `make build-<LogicalId>` with ARTIFACTS_DIR set, one function after another. The first
# recipe builds every function crate in one cargo-lambda invocation, so Cargo resolves features
# once and compiles the AWS SDKs once for all of them; each later recipe finds the build up to
# date and only copies its binary.
LAMBDA_PACKAGES := api ingest aggregate sweep invoice billing-clock webhook-dispatch
LAMBDA_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/lambda

lambdas:
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 $(addprefix --package ,$(LAMBDA_PACKAGES))

define lambda_recipe
build-$(1): lambdas
	cp "$(LAMBDA_DIR)/$(2)/bootstrap" "$$(ARTIFACTS_DIR)/bootstrap"
endef

$(eval $(call lambda_recipe,ApiFunction,api))
$(eval $(call lambda_recipe,IngestFunction,ingest))
$(eval $(call lambda_recipe,AggregateFunction,aggregate))
$(eval $(call lambda_recipe,SweepFunction,sweep))
$(eval $(call lambda_recipe,InvoiceFunction,invoice))
$(eval $(call lambda_recipe,BillingClockFunction,billing-clock))
$(eval $(call lambda_recipe,WebhookDispatchFunction,webhook-dispatch))
