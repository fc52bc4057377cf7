#!/usr/bin/env bash
# Installs (idempotently) everything the test suite and the local cluster need
# on a fresh machine: Debian packages (etcd, nftables, iptables, conntrack,
# iproute2) and a kube-apiserver built from the k8s.io/kubernetes Go module.
# The apiserver is cached outside the repo and reused.
#
# Prints the assets directory (for KUBEBUILDER_ASSETS) on its last line.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/palisade/k8s"
ASSETS="$CACHE_ROOT/$K8S_VERSION"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "setup-test-env: $*" >&2; }

"$HERE/install-packages.sh" etcd:etcd-server nft:nftables iptables:iptables conntrack:conntrack \
	ip:iproute2 kubectl:kubernetes-client
# Debian starts etcd as a service when it installs it; our tests run their own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi

mkdir -p "$ASSETS"
if [ ! -x "$ASSETS/kube-apiserver" ]; then
	log "building kube-apiserver $K8S_VERSION (about 6 minutes the first time)"
	work="$(mktemp -d)"
	trap 'rm -rf "$work"' EXIT
	cp "$HERE/tools/kube-apiserver/tools.go" "$work/"
	staging_ver="v0.${K8S_VERSION#v1.}"
	(
		cd "$work"
		cat > go.mod <<MOD
module palisade.local/kube-apiserver-build

go 1.26

require k8s.io/kubernetes $K8S_VERSION
MOD
		# k8s.io/kubernetes replaces each staging module with a local path;
		# pin every one of them to the published v0.x release instead.
		modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
		[ -f "$modfile" ] || go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
		grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$modfile" | awk '{print $1}' | sort -u | while read -r m; do
			echo "replace $m => $m $staging_ver" >> go.mod
		done
		GOFLAGS=-mod=mod go mod tidy >&2
		CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ASSETS/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
	)
	mv "$ASSETS/kube-apiserver.tmp" "$ASSETS/kube-apiserver"
fi
ln -sf "$(command -v etcd)" "$ASSETS/etcd"
ln -sf "$(command -v kubectl)" "$ASSETS/kubectl"
echo "$ASSETS"
