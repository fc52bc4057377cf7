#!/usr/bin/env bash
# Installs (idempotently) what the local cluster's real-node mode needs on top
# of hack/setup-test-env.sh: the container runtime and CNI plugins (Debian
# packages) and, built from source and cached outside the repo, kubelet,
# kube-scheduler, kube-controller-manager, kube-proxy, agnhost (the upstream
# e2e test image's binary), CoreDNS and the pause binary.
#
# Everything lands in the same cache directory as kube-apiserver and shares
# its Go build cache, so a second run does nothing.
#
# With --conformance it also builds netpol-e2e.test: the upstream e2e
# suite's NetworkPolicy specs (hack/tools/netpol-e2e). With --no-agnhost it
# leaves agnhost out: only the tests' pods run it, and make demo need not
# wait for it.
#
# Prints the assets directory on its last line.
set -euo pipefail

conformance=false
agnhost=true
for arg in "$@"; do
	case "$arg" in
	--conformance) conformance=true ;;
	--no-agnhost) agnhost=false ;;
	*) echo "usage: $0 [--conformance] [--no-agnhost]" >&2; exit 2 ;;
	esac
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/k8s-wrapper-module.sh
. "$HERE/lib/k8s-wrapper-module.sh"
# The CoreDNS release kubeadm of $K8S_VERSION installs (constants.CoreDNSVersion).
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.6}"
log() { echo "setup-real-nodes: $*" >&2; }

"$HERE/setup-test-env.sh" >/dev/null

"$HERE/install-packages.sh" containerd:containerd runc:runc /usr/lib/cni/ptp:containernetworking-plugins \
	"gcc:gcc libc6-dev"
# Debian starts containerd as a service when it installs it; every node runs its own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now containerd >/dev/null 2>&1 || true; fi

mkdir -p "$ASSETS"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# wrapper_module writes the module the real-node binaries (and, with
# --conformance, the upstream NetworkPolicy e2e suite) build in, in $1.
wrapper_module() {
	local dir="$1"
	mkdir -p "$dir"
	cp "$HERE/tools/real-nodes/tools.go" "$dir/"
	if $conformance; then mkdir -p "$dir/netpol" && cp "$HERE/tools/netpol-e2e/netpol_e2e_test.go" "$dir/netpol/"; fi
	k8s_wrapper_module "$dir" palisade.local/real-nodes-build
}

k8s_bins=(kubelet kube-scheduler kube-controller-manager kube-proxy)
if $agnhost; then k8s_bins+=(agnhost); fi
missing=()
for b in "${k8s_bins[@]}"; do [ -x "$ASSETS/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -gt 0 ]; then
	log "building ${missing[*]} $K8S_VERSION (about 4 minutes with kube-apiserver cached, 10 cold)"
	wrapper_module "$work/mod"
	pkgs=()
	for b in "${missing[@]}"; do
		case "$b" in
		agnhost) pkgs+=(k8s.io/kubernetes/test/images/agnhost) ;;
		*) pkgs+=("k8s.io/kubernetes/cmd/$b") ;;
		esac
	done
	# One invocation so the binaries share compile work; the same flags as
	# kube-apiserver's build so its packages come from the build cache.
	mkdir -p "$work/out"
	(cd "$work/mod" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/out/" "${pkgs[@]}" >&2)
	for b in "${missing[@]}"; do mv "$work/out/$b" "$ASSETS/$b"; done
fi

if [ ! -x "$ASSETS/pause" ]; then
	log "building pause"
	src="$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
	[ -f "$src" ] || go mod download "k8s.io/kubernetes@$K8S_VERSION"
	gcc -Os -Wall -Werror -static -DVERSION="v3.10.2-palisade" -o "$ASSETS/pause.tmp" "$src"
	strip "$ASSETS/pause.tmp"
	mv "$ASSETS/pause.tmp" "$ASSETS/pause"
fi

if [ ! -x "$ASSETS/coredns" ]; then
	# Only the plugins the local cluster's Corefile uses (hack/tools/coredns).
	log "building coredns $COREDNS_VERSION (about 2 minutes)"
	mkdir -p "$work/coredns"
	cp "$HERE/tools/coredns/main.go" "$work/coredns/"
	printf 'module palisade.local/coredns-build\n\ngo 1.26\n\nrequire github.com/coredns/coredns %s\n' "$COREDNS_VERSION" >"$work/coredns/go.mod"
	# -mod=mod resolves only what the build needs (tidy would fetch the
	# plugins' test dependencies too).
	(cd "$work/coredns" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags='-s -w' -o "$work/out-coredns" . >&2)
	mv "$work/out-coredns" "$ASSETS/coredns"
fi

if $conformance && [ ! -x "$ASSETS/netpol-e2e.test" ]; then
	log "building netpol-e2e.test $K8S_VERSION (the upstream NetworkPolicy e2e specs)"
	[ -f "$work/mod/go.mod" ] || wrapper_module "$work/mod"
	(cd "$work/mod" && CGO_ENABLED=0 go test -c -trimpath -ldflags='-s -w' -o "$ASSETS/netpol-e2e.test.tmp" ./netpol >&2)
	mv "$ASSETS/netpol-e2e.test.tmp" "$ASSETS/netpol-e2e.test"
fi

echo "$ASSETS"
