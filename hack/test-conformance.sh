#!/usr/bin/env bash
# Runs the upstream Kubernetes NetworkPolicy e2e specs (the "Netpol" specs
# of e2e.test, selected as upstream CI selects them: focus Netpol, label
# Feature:NetworkPolicy) against the local cluster on real nodes with
# Palisade enforcing, once per backend. Needs root and the kernel lock
# (other kernel tests share the host's netfilter and namespaces).
#
#   hack/test-conformance.sh [nftables] [iptables]
#
# CONFORMANCE_FOCUS narrows the specs (a regexp, e.g. "default-deny");
# CONFORMANCE_SKIP adds to what is skipped. JUnit reports and logs go to
# $CONFORMANCE_DIR (default /tmp/palisade-conformance/<backend>).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(nftables iptables)

ASSETS="$("$HERE/setup-real-nodes.sh" --conformance | tail -1)"
(cd "$ROOT" && CGO_ENABLED=0 go build -o bin/ ./cmd/... && CGO_ENABLED=0 go build -o bin/local-cluster ./hack/local-cluster && CGO_ENABLED=0 go build -o bin/podserver ./hack/podserver)

focus="Netpol"
[ -n "${CONFORMANCE_FOCUS:-}" ] && focus="Netpol.*(${CONFORMANCE_FOCUS})"
# SCTP needs the sctp module, which this kernel may not load; the
# SCTPConnectivity specs say so with their own label.
skip="SCTPConnectivity"
[ -n "${CONFORMANCE_SKIP:-}" ] && skip="$skip|${CONFORMANCE_SKIP}"

status=0
for backend in "${backends[@]}"; do
	out="${CONFORMANCE_DIR:-/tmp/palisade-conformance}/$backend"
	state="$out/cluster"
	rm -rf "$out"
	mkdir -p "$out"
	start=$(date +%s)
	echo "==> $backend: bringing up the real-node cluster" >&2
	LOCAL_CLUSTER_DIR="$state" "$ROOT/bin/local-cluster" down >/dev/null
	if ! LOCAL_CLUSTER_DIR="$state" "$ROOT/bin/local-cluster" up --real-nodes --backend "$backend" >"$out/up.log" 2>&1; then
		cat "$out/up.log" >&2
		status=1
		continue
	fi
	echo "==> $backend: running the Netpol specs (focus $focus, skip $skip)" >&2
	set +e
	"$ASSETS/netpol-e2e.test" \
		--kubeconfig="$state/kubeconfig" \
		--provider=local \
		--report-dir="$out" \
		--ginkgo.focus="$focus" \
		--ginkgo.skip="$skip" \
		--ginkgo.label-filter='Feature: containsAny NetworkPolicy' \
		--ginkgo.no-color \
		--ginkgo.timeout=6h \
		--ginkgo.v >"$out/e2e.log" 2>&1
	rc=$?
	set -e
	grep -E "^(Ran |SUCCESS|FAIL)" "$out/e2e.log" | tail -3 >&2 || true
	echo "==> $backend: exit $rc after $(( $(date +%s) - start )) s; report in $out" >&2
	[ $rc -eq 0 ] || status=1
	LOCAL_CLUSTER_DIR="$state" "$ROOT/bin/local-cluster" down >/dev/null
done
exit $status
