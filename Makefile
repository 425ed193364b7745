# redpg - developer tasks.  `make` (or `make help`) lists the targets.
#
# Tests need PostgreSQL, Redis and PgBouncer: `make services` starts them
# (CI runs scripts/services.sh itself before `make test`).

GO ?= go
GOFMT ?= $(shell $(GO) env GOROOT 2>/dev/null)/bin/gofmt
BIN_DIR := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/redpg/redpg/internal/version.Version=$(VERSION)
TEST_TIMEOUT ?= 14m
FUZZ_TIME ?= 8s

# Fuzz smoke targets, as <package under ./internal>:<FuzzFunc>. Add more here.
FUZZ_TARGETS := order:FuzzDecode order:FuzzDecodeFastMatchesSlow order:FuzzParseCentsFastMatchesSlow order:FuzzParseQuantityFastMatchesSlow order:FuzzParseTimestampFastMatchesSlow transform:FuzzRawDataMatchesMarshal config:FuzzParseDotEnv config:FuzzRedact money:FuzzToUSDCents web:FuzzPrintable partition:FuzzParseKeep redisconn:FuzzParse

.DEFAULT_GOAL := help
.PHONY: help build test test-race test-short test-topologies fuzz bench lint demo services clean

help: ## List targets (default goal)
	@awk 'BEGIN { FS = ":.*?## "; print "Usage: make <target>\n\nTargets:" } \
		/^[a-zA-Z0-9_-]+:.*?## / { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## Build the CLI into bin/redpg
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN_DIR)/redpg ./cmd/redpg

test: services ## Full test run (CI): starts the services, then race tests, chaos tests (restart the local PostgreSQL!), fuzz smoke
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -tags chaos -count=1 -p 1 -timeout 10m ./internal/chaos/
	@$(MAKE) --no-print-directory fuzz

test-topologies: ## Slow topology tests (-tags topology), each starting its own servers: PostgreSQL primary + replica, PgBouncer with 800 clients, Redis Cluster and Sentinel failover
	$(GO) test -race -tags topology -count=1 -timeout 15m -run '^TestTopology' ./internal/pipeline/ ./internal/cli/
	$(GO) test -race -tags topology -count=1 -timeout 8m ./internal/topology/

test-race: ## go test -race on all packages (no fuzzing)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

test-short: ## Quick tests: go test -short (skips the slow ones)
	$(GO) test -short -count=1 ./...

fuzz: ## Fuzz smoke only: each FUZZ_TARGETS entry for FUZZ_TIME
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg="$${t%%:*}"; fn="$${t#*:}"; \
		if ! $(GO) test -list "^$$fn$$" ./internal/$$pkg | grep -qx "$$fn"; then \
			echo "fuzz: $$fn not found in ./internal/$$pkg (fix FUZZ_TARGETS in Makefile)" >&2; \
			exit 1; \
		fi; \
		echo "$(GO) test -run '^\$$' -fuzz '^$$fn\$$' -fuzztime $(FUZZ_TIME) ./internal/$$pkg"; \
		out=$$(mktemp); \
		if ! $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_TIME) ./internal/$$pkg >$$out 2>&1; then \
			cat $$out; \
			if grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
				echo "fuzz: $$fn: the fuzzing engine timed out stopping a worker on a loaded machine (no failing input); once more"; \
				$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_TIME) ./internal/$$pkg || { rm -f $$out; exit 1; }; \
			else rm -f $$out; exit 1; fi; \
		else cat $$out; fi; \
		rm -f $$out; \
	done

bench: ## Benchmarks for ./internal/... (with allocations)
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

STATICCHECK_VERSION ?= v0.8.2
ERRCHECK_VERSION ?= v1.30.0
LINT_BIN := $(abspath $(BIN_DIR))/lint

$(LINT_BIN)/staticcheck:
	GOBIN=$(LINT_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(LINT_BIN)/errcheck:
	GOBIN=$(LINT_BIN) $(GO) install github.com/kisielk/errcheck@$(ERRCHECK_VERSION)

lint: $(LINT_BIN)/staticcheck $(LINT_BIN)/errcheck ## gofmt, go vet, staticcheck and errcheck, with and without the chaos and topology tags
	@files=$$(find . -name '*.go' -not -path './vendor/*' -not -path '*/testdata/*'); \
	if [ -n "$$files" ]; then \
		out=$$($(GOFMT) -l $$files); \
		if [ -n "$$out" ]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$out"; exit 1; fi; \
	fi
	$(GO) vet ./...
	$(GO) vet -tags topology ./...
	$(GO) vet -tags chaos ./...
	$(LINT_BIN)/staticcheck ./...
	$(LINT_BIN)/staticcheck -tags chaos ./...
	$(LINT_BIN)/staticcheck -tags topology ./...
	$(LINT_BIN)/errcheck -exclude .errcheck-excludes ./...
	$(LINT_BIN)/errcheck -exclude .errcheck-excludes -tags chaos ./...
	$(LINT_BIN)/errcheck -exclude .errcheck-excludes -tags topology ./...

demo: ## Start services and run the demo by redpg serve in-process; watch it on http://127.0.0.1:8080/
	bash scripts/services.sh && $(GO) run ./cmd/redpg demo --serve --pace 20s --linger 1m

services: ## Start PostgreSQL, Redis and PgBouncer for tests (idempotent)
	bash scripts/services.sh

clean: ## Remove build output
	rm -rf $(BIN_DIR)
