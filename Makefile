# One entry point for building, testing and running the cluster.
# `make test` is the only test command (CI runs it through .ci/run).

SHELL := /bin/bash
CARGO ?= cargo
NODE_PEERS := tests/node

.PHONY: test deps fmt lint build

## test: install what the tests need when missing, then format check, clippy and every test
test: deps deploy-check
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace
	$(MAKE) --no-print-directory test-make-up
	$(MAKE) --no-print-directory test-make-up SENTINEL=1
	$(MAKE) --no-print-directory test-compose

## deps: redis-server (Debian package) and the Node peers (npm ci), only when missing
deps:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server"; \
		bash -c 'source scripts/lib.sh && apt_install redis-server'; \
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

# ---------------------------------------------------------------------------
# The local cluster (scripts/cluster.sh) and the deployment files (deploy/).
# Ports and paths are overridable on the command line or in the environment:
#   make up GATEWAY_A_PORT=4000 MASTER_PORT=7379
#   MASTER_PORT REPLICA_1_PORT REPLICA_2_PORT GATEWAY_A_PORT GATEWAY_A_ADMIN_PORT
#   GATEWAY_B_PORT GATEWAY_B_ADMIN_PORT EMITTER_PORT READY_TIMEOUT SENTINEL=1
# PROFILE=debug reuses the debug binaries (what `cargo test` built); the
# default is a release build. NO_BUILD=1 skips cargo and uses BIN_DIR as is.

.PHONY: up down status deploy-check test-make-up

PROFILE ?= release
BIN_DIR ?= $(or $(CARGO_TARGET_DIR),target)/$(PROFILE)
RUN_DIR ?= .run
CLUSTER := BIN_DIR='$(BIN_DIR)' RUN_DIR='$(RUN_DIR)' scripts/cluster.sh

## up: build (release) and start Redis master + 2 replicas, 2 gateways and the emitter; wait until ready
up:
ifneq ($(NO_BUILD),1)
	$(CARGO) build $(if $(filter debug,$(PROFILE)),,--profile $(PROFILE)) -p gateway -p emitter
endif
	@$(CLUSTER) up

## down: stop exactly what `make up` started (pid files in RUN_DIR)
down:
	@$(CLUSTER) down

## status: what `make up` started and whether it still runs
status:
	@$(CLUSTER) status

## deploy-check: validate docker-compose.yml and deploy/ with docker-compose, haproxy, promtool, redis-server
deploy-check:
	@scripts/check-deploy.sh

## test-make-up: `make up` on free ports with the debug binaries, clients on both gateways, emitter, `make down`
test-make-up:
	@scripts/test-make-up.sh

# ---------------------------------------------------------------------------
# The Compose deployment in real containers on a machine without Docker
# (podman + docker-compose, stand-in images from Debian's packages; see
# scripts/compose.sh). GATEWAYS=N (default 2); COMPOSE_LAYOUT=fixed for the
# layout without Sentinel; host ports LB_PORT, EMITTER_PORT, PROMETHEUS_PORT.

.PHONY: compose-up compose-down test-compose

GATEWAYS ?= 2

## compose-up: docker-compose up with podman (set up when missing); returns once every healthcheck passes
compose-up:
	@GATEWAYS=$(GATEWAYS) scripts/compose.sh up $(GATEWAYS)

## compose-down: remove every container and network of compose-up (the Prometheus volume stays)
compose-down:
	@scripts/compose.sh down

## test-compose: the Compose deployment started, scaled to 4, broken (replica, master, gateway) and torn down, from real clients
test-compose: deps
	@scripts/test-compose.sh

.PHONY: bench bench-quick

## bench: every scenario at every load step against rust, node, socketioxide-redis and the floor (~15 min); writes bench/results/<date>.{json,md,svg}
bench: deps
	bash bench/run.sh full

## bench-quick: the smallest step of each scenario (a couple of minutes); writes bench/results/<date>-quick.*
bench-quick: deps
	bash bench/run.sh quick

.PHONY: soak

SOAK_MINUTES ?= 5

## soak: session churn (long-polling, websocket, mixed) for SOAK_MINUTES (default 5); reports the memory kept per session; REDIS=1 runs it on Redis with broadcasts flowing
soak: deps
	$(CARGO) run -q -p e2e --bin soak -- --minutes $(SOAK_MINUTES) $(if $(filter 1,$(REDIS)),--redis)
