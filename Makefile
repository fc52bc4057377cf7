# Palisade: zero-trust network policy controller for Kubernetes.
# Run `make help` for the targets. `make test` runs the whole suite on a fresh
# machine (it installs etcd and builds kube-apiserver itself); `make demo`
# brings up a local cluster and shows Palisade at work.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

IMG ?= palisade:dev
K8S_VERSION ?= v1.37.2
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.6.2

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
KUBECTL ?= kubectl

# Tests that program nftables, iptables and network namespaces need root;
# CI runs as root. go test runs packages one at a time (-p 1) because the
# kernel tests share the host's netfilter state.
GOTEST_FLAGS ?= -count=1
# A kernel test that cannot run (not root) fails instead of skipping, and
# hack/test-summary prints which packages ran, passed and skipped and fails
# the run on any skip. Set PALISADE_REQUIRE_KERNEL_TESTS=0 to run as non-root.
export PALISADE_REQUIRE_KERNEL_TESTS ?= 1
export GOFLAGS := -buildvcs=false

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the markers in api/ and controllers/.
	$(CONTROLLER_GEN) rbac:roleName=palisade-controller crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=palisade-agent paths="./dataplane/agent/..." output:rbac:artifacts:config=config/agent/rbac

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -s -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: manifests generate ## Fail if generated files are out of date.
	@git diff --exit-code -- api config || { echo "generated files are stale: run make manifests generate"; exit 1; }

.PHONY: setup-test-env
setup-test-env: ## Install etcd, nftables, iptables, conntrack and build kube-apiserver (cached).
	@hack/setup-test-env.sh >/dev/null

.PHONY: test
test: setup-test-env manifests generate vet test-unit test-fuzz test-e2e test-e2e-real-nodes test-conformance-subset ## Run the whole suite: unit, envtest, real-kernel, brief fuzzing, e2e tests and a subset of upstream's NetworkPolicy e2e specs.

.PHONY: test-unit
test-unit: ## Unit, envtest (real kube-apiserver) and real-kernel tests.
	KUBEBUILDER_ASSETS="$$(hack/setup-test-env.sh)" go run ./hack/test-summary go test $(GOTEST_FLAGS) -json -p 1 $$(go list ./... | grep -v /e2e)

# Fuzz targets as package:FuzzName. Their seed corpora (testdata/fuzz/) also
# run as plain tests in test-unit.
FUZZTIME ?= 10m
FUZZ_TARGETS := ./internal/intent/compiler:FuzzCompile ./internal/policy:FuzzCompute ./dataplane/render:FuzzRender

.PHONY: fuzz
fuzz: ## Fuzz the intent compiler, the policy model and the nft renderer, $(FUZZTIME) each (default 10m).
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzzing $$name in $$pkg for $(FUZZTIME)"; \
		go test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

.PHONY: test-fuzz
test-fuzz: ## Run each fuzz target for 10 s.
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10s

.PHONY: test-e2e
test-e2e: build ## End-to-end tests on the local cluster (root).
	KUBEBUILDER_ASSETS="$$(hack/setup-test-env.sh)" go run ./hack/test-summary go test $(GOTEST_FLAGS) -json -p 1 -timeout 25m -tags e2e ./e2e/...

.PHONY: setup-real-nodes
setup-real-nodes: setup-test-env ## Install containerd, runc and CNI plugins; build kubelet, kube-proxy, kube-scheduler, kube-controller-manager, CoreDNS, pause and agnhost (cached).
	hack/setup-real-nodes.sh

.PHONY: up-real-nodes
up-real-nodes: setup-real-nodes build ## A local cluster on real nodes (containerd + kubelet + kube-proxy per node), Palisade deployed from config/default as images; make demo-down removes it.
	bin/local-cluster up --real-nodes

.PHONY: test-e2e-real-nodes
test-e2e-real-nodes: setup-real-nodes build ## Palisade as images enforces NetworkPolicy between real pods on two nodes, both backends, and make demo works there (root, ~4 min).
	@# One real-node cluster per machine (fixed addresses): wait for any other.
	KUBEBUILDER_ASSETS="$$(hack/setup-test-env.sh)" flock /tmp/palisade-realnodes.lock go run ./hack/test-summary go test $(GOTEST_FLAGS) -json -p 1 -timeout 20m -tags e2e,realnodes -run TestRealNodes ./e2e/

.PHONY: test-conformance
test-conformance: setup-test-env ## Upstream Kubernetes NetworkPolicy e2e specs (Netpol) on real nodes, nftables and iptables (root, ~21 min); rewrites docs/conformance.md.
	hack/test-conformance.sh

.PHONY: test-conformance-subset
test-conformance-subset: setup-test-env ## The Netpol specs make test runs (hack/conformance-report/subset.go) on real nodes, both backends (root, ~8 min); fails if one fails or does not run.
	hack/test-conformance.sh --subset

.PHONY: test-reliability
test-reliability: ## Fault and load scenarios on the local cluster (root, ~25 min; RELIABILITY_QUICK=1 for ~8); rewrites docs/reliability.md.
	hack/reliability.sh

.PHONY: test-reliability-real-nodes
test-reliability-real-nodes: setup-real-nodes build ## Agent kill -9, agent DaemonSet rolling update and a node without a ready agent, under traffic, on real nodes, both backends (root, ~5 min); prints the figures docs/reliability.md reports.
	KUBEBUILDER_ASSETS="$$(hack/setup-test-env.sh)" go test $(GOTEST_FLAGS) -v -p 1 -timeout 20m -tags e2e,realnodes -run TestReliabilityRealNodes ./e2e/

.PHONY: bench
bench: setup-test-env ## Benchmarks (root): writes docs/benchmarks.md and bench/results/; BENCH_QUICK=1 for the quick variant.
	hack/bench.sh

##@ Build

.PHONY: build
build: ## Build bin/controller, bin/agent, bin/local-cluster and bin/podserver.
	@mkdir -p $(LOCALBIN)
	CGO_ENABLED=0 go build -o $(LOCALBIN)/ ./cmd/...
	@if [ -d hack/local-cluster ]; then CGO_ENABLED=0 go build -o $(LOCALBIN)/local-cluster ./hack/local-cluster; fi
	@if [ -d hack/podserver ]; then CGO_ENABLED=0 go build -o $(LOCALBIN)/podserver ./hack/podserver; fi

.PHONY: run
run: manifests generate ## Run the controller against the current kubeconfig.
	go run ./cmd/controller

.PHONY: docker-build
docker-build: ## Build the image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Local cluster

.PHONY: demo
demo: build ## Bring up a local cluster on real nodes (or reuse it), deploy a shop with intents, and show what Palisade does (root; ~1 min cached).
	@hack/setup-real-nodes.sh --no-agnhost >/dev/null
	$(LOCALBIN)/local-cluster demo

.PHONY: demo-simulated
demo-simulated: setup-test-env build ## The same demo on simulated nodes (pods are network namespaces; no kubelet, seconds).
	$(LOCALBIN)/local-cluster demo --simulated

.PHONY: demo-down
demo-down: ## Tear the local cluster down; leaves the machine as it was.
	@if [ -x $(LOCALBIN)/local-cluster ]; then $(LOCALBIN)/local-cluster down; else go run ./hack/local-cluster down; fi

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster in ~/.kube/config.
	$(KUBECTL) apply -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs.
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the controller and the agent DaemonSet.
	$(KUBECTL) apply -k config/default

.PHONY: undeploy
undeploy: ## Remove the controller and the agent.
	$(KUBECTL) delete --ignore-not-found -k config/default

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) GOFLAGS= go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) GOFLAGS= go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
