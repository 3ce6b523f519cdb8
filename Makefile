# slotwatch: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/bin
TOOLS     := $(BIN)/tools
WITH_PG   := ./deploy/local/with-postgres.sh
PKGS      := github.com/slotwatch/slotwatch/...
BINARIES  := $(shell ls -d services/*/cmd/* 2>/dev/null)
# What `--version` and slotwatch_build_info report (buildinfo package).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Read once per run: a recursive ?= runs git describe at each use, and a
# commit during a long run (make test-images) gave the images one version
# and their test another.
VERSION   := $(VERSION)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/slotwatch/slotwatch/services/platform/buildinfo.version=$(VERSION) \
             -X github.com/slotwatch/slotwatch/services/platform/buildinfo.commit=$(COMMIT)
export PATH := $(TOOLS):$(PATH)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Build buf and the protoc plugins pinned in tools/go.mod into bin/tools
	@GOWORK=off GOBIN=$(TOOLS) $(GO) -C tools install tool

.PHONY: generate
generate: tools ## Regenerate gen/ (Go code and the gateway's OpenAPI document) from proto/
	rm -rf gen/slotwatch gen/openapi/slotwatch
	buf generate

.PHONY: build
build: ## Build every binary into bin/
	@mkdir -p $(BIN)
	@for d in $(BINARIES); do echo "go build $$d"; CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./$$d || exit 1; done

.PHONY: lint
lint: tools ## buf lint, buf breaking (against main), buf format, go vet, gofmt, generated-code drift, modules that stand alone
	buf lint
	@./tools/buf-breaking.sh
	@buf format -d --exit-code || { echo "buf format: run 'buf format -w'"; exit 1; }
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l gen services deploy); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  buf generate -o $$tmp && \
	  diff -r $$tmp/gen/slotwatch gen/slotwatch >/dev/null && \
	  diff -r $$tmp/gen/openapi/slotwatch gen/openapi/slotwatch >/dev/null || { echo "gen/ is stale: run 'make generate' and commit"; exit 1; }
	@./tools/check-modules.sh

.PHONY: test
test: lint chromium ## Run every test (starts a private Postgres and installs Chromium if needed); not test-images or kube-play, which CI does not run either
	$(WITH_PG) $(GO) test -race -count=1 -timeout 25m $(PKGS)

.PHONY: soak
soak: build chromium ## The make-run system, Notifier included, for DURATION (default 30m), sampled every SOAK_EVERY (1m); fails on RSS/goroutine/fd growth, on connections outside the pools growing or past the pools' maxima, or with no checks, finds or deliveries
	$(WITH_PG) ./bin/soak -duration $(or $(DURATION),30m) -every $(or $(SOAK_EVERY),1m) $(SOAK_ARGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 1m; FUZZ=regexp picks targets); seeds run in `make test`
	$(WITH_PG) ./tools/fuzz.sh '$(FUZZ)'

.PHONY: chromium
chromium: ## Install Debian's chromium with apt-get when it is missing
	@./deploy/local/ensure-chromium.sh

.PHONY: images
images: ## Build every service's image with podman (deploy/docker: static.Dockerfile once per static service, checker.Dockerfile; local stand-ins for bases no registry serves)
	@VERSION=$(VERSION) COMMIT=$(COMMIT) ./deploy/local/with-podman.sh ./deploy/local/images.sh

.PHONY: test-images
test-images: images ## Run each built image as its manifest says: non-root, read-only root, probes, SIGTERM, the seed's slot found in the Checker's container (not in make test/CI)
	$(WITH_PG) ./deploy/local/with-podman.sh env SLOTWATCH_IMAGE_TESTS=1 VERSION=$(VERSION) \
	  $(GO) test -count=1 -timeout 30m -run '^(TestImagesRunAsTheirManifestsSay|TestStaticImagesAreSmallAndShellless)$$' -v github.com/slotwatch/slotwatch/deploy/deploytest

.PHONY: kube-play
kube-play: ## Play overlays/podman (overlays/dev + hostAliases) with podman kube play --network host; slotctl seed, the Checker finds its slot; kube down (make images first; not in make test/CI)
	$(WITH_PG) ./deploy/local/with-podman.sh env SLOTWATCH_KUBE_PLAY=1 \
	  $(GO) test -count=1 -timeout 20m -run '^TestKubePlay$$' -v github.com/slotwatch/slotwatch/deploy/deploytest

.PHONY: kube-play-down
kube-play-down: ## Remove the pods of an interrupted make kube-play (TestKubePlay removes its own)
	@./deploy/local/with-podman.sh bash -c 'for p in portalsim accountpool requests notifier checker; do podman pod rm --force --ignore $$p-pod-0; done'

.PHONY: run
run: build tools chromium ## The main job: the whole system with demo data, sessions shown live (DEMO_ARGS=-slot-after=30s)
	$(WITH_PG) ./deploy/local/run.sh $(DEMO_ARGS)

.PHONY: bench-pool
bench-pool: ## AccountPool: gRPC Acquire+Release vs. its SQL direct, a bare two-statement pair and River (16/256 clients, 1k/100k accounts)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/riverbench ./bench/river
	$(WITH_PG) $(GO) run ./services/accountpool/cmd/poolbench -river $(BIN)/riverbench $(BENCH_ARGS)

.PHONY: bench-requests
bench-requests: ## Requests: claim+report cycles via gRPC vs. the same SQL direct
	$(WITH_PG) $(GO) run ./services/requests/cmd/requestsbench $(BENCH_ARGS)

.PHONY: bench-checker
bench-checker: chromium ## Checker: the four portal families side by side; shared browser with fresh contexts vs. a new browser per check
	$(GO) run ./services/checker/cmd/checkerbench $(BENCH_ARGS)

.PHONY: bench-discipline
bench-discipline: build chromium ## Portal load discipline: logins per check with session reuse on/off, checks/min vs. the portal cap, a CAPTCHA storm's pause (2 Checkers)
	$(WITH_PG) ./bin/disciplinebench $(BENCH_ARGS)

.PHONY: bench-notifier
bench-notifier: build ## Notifier: events/s into delivered webhooks vs. a bare WatchEvents loop; latency from SLOT_FOUND commit to webhook arrival at 100/s
	$(WITH_PG) ./bin/notifierbench $(BENCH_ARGS)

.PHONY: chaos
chaos: build chromium ## Chaos suite (issue 15): every fault against the real binaries on a private Postgres, one line per scenario (CHAOS_ARGS=-scenarios=pg-restart-fast -kills=20)
	./bin/chaos $(CHAOS_ARGS)

.PHONY: clean
clean: ## Remove bin/ (the private cluster in .data/ stays)
	rm -rf $(BIN)
