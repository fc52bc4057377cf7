#!/usr/bin/env bash
# Installs (idempotently) everything the test suite and the local cluster need
# on a fresh machine: Debian packages (etcd, nftables, iptables, conntrack,
# iproute2) and a kube-apiserver built from the k8s.io/kubernetes Go module.
# The apiserver is cached outside the repo and reused.
#
# Prints the assets directory (for KUBEBUILDER_ASSETS) on its last line.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/k8s-wrapper-module.sh
. "$HERE/lib/k8s-wrapper-module.sh"
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
	k8s_wrapper_module "$work" palisade.local/kube-apiserver-build
	(cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ASSETS/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2)
	mv "$ASSETS/kube-apiserver.tmp" "$ASSETS/kube-apiserver"
fi
ln -sf "$(command -v etcd)" "$ASSETS/etcd"
ln -sf "$(command -v kubectl)" "$ASSETS/kubectl"
echo "$ASSETS"
