# One entry point for building, testing and running the cluster.
# `make test` is the only test command (CI runs it through .ci/run).

SHELL := /bin/bash
CARGO ?= cargo
NODE_PEERS := tests/node

.PHONY: test deps fmt lint build

## test: install what the tests need when missing, then format check, clippy and every test
test: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

## deps: redis-server (Debian package) and the Node peers (npm ci), only when missing
deps:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; \
		command -v redis-server >/dev/null || { echo "redis-server could not be installed" >&2; exit 1; }; }
	@command -v node >/dev/null 2>&1 || { echo "node (>= 18) is required for the Node peers" >&2; exit 1; }
	@if [ ! -d $(NODE_PEERS)/node_modules ] || [ $(NODE_PEERS)/package-lock.json -nt $(NODE_PEERS)/node_modules/.package-lock.json ]; then \
		echo "installing Node peers (npm ci)"; \
		cd $(NODE_PEERS) && npm ci --no-audit --no-fund --loglevel=error; \
	fi

## fmt: format the workspace
fmt:
	$(CARGO) fmt --all

## lint: clippy with warnings as errors
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build:
	$(CARGO) build --workspace --release
