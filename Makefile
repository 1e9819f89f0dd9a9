# The project's commands; README.md explains them.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run demo test lint fmt schemas deps bench bench-nearby eval-classify train-classify deploy-check monitoring promtool tour contract-check contract-release contract-tools docs

## Starts NATS (JetStream, its own port and data dir) and the services on SQLite.
run: deps
	@deploy/local/run.sh

## A scripted day in the district with shequctl, against the system `make run`
## started (in another terminal); about a minute.
demo:
	@deploy/local/demo.sh

## Writes docs/tour.md from one run of deploy/local/tour.sh against the system
## `make run` started on an empty data directory (SHEQU_DATA_DIR=$$(mktemp -d)
## make run); a test fails while the page is not what the tour prints.
tour:
	@deploy/local/tour.sh >docs/tour.md.new || { rm -f docs/tour.md.new; exit 1; }
	@mv docs/tour.md.new docs/tour.md && echo "wrote docs/tour.md"

## Unit, integration and fault tests (real nats-server; PostgreSQL when one answers).
test: deps
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --profile ci; \
	else \
		echo "cargo-nextest not found; running cargo test"; \
		$(CARGO) test --workspace; \
	fi

## What can be checked of deploy/ without a container engine: nats.conf, the
## k8s manifests (kubectl kustomize), compose (docker compose / docker-compose
## when installed), scripts, the alerting rules with their unit tests and the
## dashboard (promtool, installed when missing); each other check skips with a
## note when its tool is missing.
deploy-check: promtool
	@deploy/check.sh $(DEPLOY_CHECK_ARGS)

## Renders deploy/k8s/monitoring/prometheus-rule.yaml from
## deploy/monitoring/alerts.yaml (deploy-check fails while it is stale).
monitoring:
	@python3 deploy/monitoring/render-prometheus-rule.py

## promtool from Debian's prometheus package when it is missing.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
		echo "promtool not found: installing Debian's prometheus package"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	}

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The contract against its last release (proto/contract/released): `buf
## breaking` on the .proto files, and the official AsyncAPI parser on
## proto/events/asyncapi.yaml (no error, no warning); the event schemas are
## checked by a test of `make test`. Node and npm are installed from Debian's
## packages when missing, the tools pinned in proto/contract/package.json.
contract-check: contract-tools
	@proto/contract/check.sh

## The event catalog and the gRPC API reference as HTML in build/docs
## (offline once the contract tools are installed).
docs: contract-tools
	@docs/build.sh

## Records the contract as it is now as the released one (a deliberate release:
## a breaking change then passes the checks, and later ones are held to it).
contract-release:
	@rm -rf proto/contract/released
	@mkdir -p proto/contract/released/events
	@cp -r proto/events/schemas proto/events/asyncapi.yaml proto/contract/released/events/
	@cp -r proto/shequ proto/contract/released/
	@echo "proto/contract/released now holds the contract as it is"

contract-tools:
	@command -v npm >/dev/null 2>&1 || { \
		echo "npm not found: installing Debian's nodejs and npm"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	}

## Rewrites proto/events/schemas/*.json from the event payload types
## (shequ_proto::schemas), after a payload or a vocabulary enum changed; a test
## fails while the committed files are stale.
schemas:
	$(CARGO) run -q -p shequ-proto --example write-schemas

## The system against this machine's ceilings, in one run (a release build; a few
## minutes; see docs/performance.md): a bare gRPC echo and a bare durable SQLite
## transaction, complaint intake at concurrency 1-256, event propagation under
## load, FindNearby over 50,000 merchants, each service's RSS, and circle
## coverage of the whole district (SHEQU_BENCH_ONLY=coverage: that alone).
bench: deps
	$(CARGO) build --release -p shequ-bench -p shequ-complaints -p shequ-merchant-alliance --bins
	$(CARGO) run --release -q -p shequ-bench
	@$(MAKE) --no-print-directory eval-classify

## The complaint classifier over the labelled corpus's held-out split:
## accuracy, per-category precision and recall, confusion, share sent to review.
eval-classify:
	$(CARGO) run -q -p shequ-complaints --example eval-classify

## Retrains classifier/weights.tsv from classifier/terms.tsv and the corpus's
## training split (a test fails while the committed weights are stale).
train-classify:
	$(CARGO) run -q -p shequ-complaints --example train-classify

## FindNearby alone over 50,000 generated merchants, with its query plan and
## candidate counts (concurrency 1 and 16).
bench-nearby: deps
	$(CARGO) bench -p shequ-merchant-alliance --bench nearby

## nats-server from Debian's packages when it is missing.
deps:
	@command -v nats-server >/dev/null 2>&1 || { \
		echo "nats-server not found: installing Debian's package"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nats-server; \
	}
