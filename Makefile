# Orca's build. `make help` lists the targets.

SHELL := /usr/bin/env bash
GO ?= go
CRD_DIR := deploy/kustomize/crd
CONTROLLER_GEN := $(GO) tool controller-gen
# Where the control-plane binaries are cached (outside the checkout, keyed by version).
export ORCA_CACHE_DIR ?= $(HOME)/.cache/orca
GO_TEST_FLAGS ?=
BENCH_FLAGS ?=
CHAOS_FLAGS ?=
FUZZTIME ?= 1m
RUN_FLAGS ?=
SERVICES := scheduler dispatcher watcher actions

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: generate
generate: ## Generate the deepcopy code of the CRD types (controller-gen).
	$(CONTROLLER_GEN) object paths=./internal/api/...

.PHONY: manifests
manifests: ## Generate the CRD YAML under deploy/kustomize/crd and the RBAC under deploy/kustomize/rbac (controller-gen).
	rm -f $(CRD_DIR)/sirocco.cloud_*.yaml
	$(CONTROLLER_GEN) crd:generateEmbeddedObjectMeta=true paths=./internal/api/... output:crd:dir=$(CRD_DIR)
	$(GO) run ./hack/taskcrd $(CRD_DIR)/sirocco.cloud_tasks.yaml
	for svc in $(SERVICES); do \
		$(CONTROLLER_GEN) rbac:roleName=orca-$$svc paths=./internal/$$svc/... output:rbac:dir=deploy/kustomize/rbac/$$svc || exit 1; \
	done
	$(CONTROLLER_GEN) rbac:roleName=orca-leader-election paths=./internal/app/... output:rbac:dir=deploy/kustomize/rbac/leader-election

.PHONY: build
build: ## Build Orca's binaries into bin/.
	$(GO) build -o bin/ ./cmd/...

# The image of the four services (Dockerfile); CONTAINER_TOOL=podman works too.
IMAGE ?= ghcr.io/sirocco-cloud/orca:latest
CONTAINER_TOOL ?= docker

.PHONY: images
images: ## Build the container image of the four services (one image; the command picks the service).
	$(CONTAINER_TOOL) build -t $(IMAGE) .

# Without KUBECONFIG: a sandbox cluster in ~/.local/state/orca/sandbox, emptied at
# each start. With KUBECONFIG: that cluster (the CRDs are installed). ORCA_NATS_URL
# picks a NATS server instead of the embedded one.
.PHONY: run
run: ## Run Orca with the examples applied, and its web view: in a local sandbox cluster, or with KUBECONFIG set in that cluster (Ctrl-C stops it).
	@$(GO) build -o bin/orca ./cmd/orca
ifeq ($(KUBECONFIG),)
	@KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" && export KUBEBUILDER_ASSETS && \
		exec bin/orca run --sandbox --apply examples $(RUN_FLAGS)
else
	exec bin/orca run --install-crds --apply examples $(RUN_FLAGS)
endif

.PHONY: control-plane
control-plane: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl into the cache (once).
	hack/control-plane.sh

.PHONY: test
test: ## Run all tests against a real kube-apiserver and nats-server (builds the control plane once).
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" && export KUBEBUILDER_ASSETS && \
		$(GO) test -count=1 $(GO_TEST_FLAGS) ./...

# The chaos suite is a test binary run directly, so that its figures are the last
# line of output. CHAOS_FLAGS: -n (ignitions, default 1000), -seed, -duration,
# -keep, ... (`go test ./test/chaos -args -h` lists them).
.PHONY: chaos
chaos: ## Run the chaos suite: the services as processes under faults, every run checked (CHAOS_FLAGS="-n=200 -seed=7").
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" && export KUBEBUILDER_ASSETS && \
		dir="$$(mktemp -d)" && trap 'rm -rf "$$dir"' EXIT && \
		$(GO) test -c -o "$$dir/chaos.test" ./test/chaos && \
		ORCA_CHAOS=1 "$$dir/chaos.test" -test.run '^TestChaos$$' -test.v -test.timeout 60m $(CHAOS_FLAGS)

# HA mode: two processes of each service (the scheduler's and the watcher's
# leaders killed in turn), a three-node NATS cluster with the stream R3, its
# servers killed one at a time. CHAOS_FLAGS come after, and win.
CHAOS_HA_FLAGS := -replicas=2 -nats-nodes=3 -nats-restarts=4

.PHONY: chaos-ha
chaos-ha: ## Run the chaos suite in HA mode: two of each service, a three-node NATS cluster, leaders and NATS nodes killed (CHAOS_FLAGS="-n=200").
	$(MAKE) chaos CHAOS_FLAGS="$(CHAOS_HA_FLAGS) $(CHAOS_FLAGS)"

.PHONY: bench
bench: ## Run the benchmarks: the bus against core NATS, then Orca against a local control plane (./bench, about 8 minutes; BENCH_FLAGS=-quick for 3).
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./internal/bus/
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh)" && export KUBEBUILDER_ASSETS && \
		$(GO) run ./bench $(BENCH_FLAGS)

# Every native fuzz target of the repository (func FuzzXxx in a _test.go file),
# each fuzzed for FUZZTIME. `make test` runs their seed corpora (testdata/fuzz/).
.PHONY: fuzz
fuzz: ## Fuzz each fuzz target for FUZZTIME (default 1m); new crashers land in testdata/fuzz/.
	@set -e; for file in $$(git grep -l '^func Fuzz' -- '*_test.go'); do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "== ./$$(dirname $$file) $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$file); \
		done; \
	done

.PHONY: lint
lint: ## go vet and gofmt.
	$(GO) vet ./...
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: clean
clean: ## Remove build output (not the control-plane cache).
	rm -rf bin/
