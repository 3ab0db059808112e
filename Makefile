# agui-server: the two commands are `make run` and `make test` (see README.md).
#
# Everything the tests need is installed here, idempotently: npm packages from the committed
# lockfiles (no browsers or binaries are downloaded). One cargo target directory, debug builds
# for tests, the workspace built once up front.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
NODE_TREES := tests/conformance/v1 tests/conformance/v0 tests/idp web
SERVER_BIN := target/debug/agui-server

.PHONY: help run dev chromium node-deps build test test-rust test-conformance lint fmt deps readme-config bench bench-quick bench-deps clean

help: ## List the targets.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-16s %s\n", $$1, $$2}'

run: build ## The demo: a real OpenID provider, agui-server and the CopilotKit app; prints the URL and the demo accounts.
	$(MAKE) --no-print-directory node-deps
	node web/scripts/run-demo.mjs

dev: build ## agui-server alone with an in-process issuer and the scripted model; prints a curl to try.
	$(SERVER_BIN) dev

# One build for `make run`, `make dev` and `make test`: the same cargo invocation, so the same
# feature set, so a `make run` after `make test` compiles nothing (scripts/test.sh checks it).
build: ## Build the whole workspace once (all targets, debug).
	$(CARGO) build --workspace --all-targets --locked

deps: node-deps chromium ## Install the Node packages (from lockfiles) and Debian's Chromium when root.

node-deps: $(NODE_TREES:%=%/node_modules/.installed) ## Install the Node packages from the lockfiles (what `make run` needs).

chromium: ## Install Debian's Chromium for the browser tests (says what to do without root).
	web/scripts/install-chromium.sh

# npm ci only when the lockfile changed since the last install.
%/node_modules/.installed: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: ## Run every test; ends with one "N passed, N failed, N skipped" line.
	$(MAKE) --no-print-directory deps build
	scripts/test.sh

lint: ## cargo fmt --check and clippy with warnings as errors.
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the Rust code.
	$(CARGO) fmt --all

readme-config: build ## Regenerate the README's configuration reference from the config types.
	scripts/readme-config.sh

bench: ## The full benchmark against the Python, Node and AG2 peers (not part of make test; < 20 min).
	bench/run.sh full

bench-quick: ## A one-minute subset of the benchmark (overwrites bench/results/latest.md).
	bench/run.sh quick

bench-deps: ## Install the benchmark's peers from their pins (bench/peers/.venv, node_modules).
	bench/peers/install.sh

clean: ## Remove build outputs and installed Node packages.
	$(CARGO) clean
	rm -rf $(NODE_TREES:%=%/node_modules) web/dist
