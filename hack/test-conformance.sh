#!/usr/bin/env bash
# Runs the upstream Kubernetes NetworkPolicy e2e specs (the "Netpol" specs of
# e2e.test) against the local cluster on real nodes with Palisade enforcing,
# once per backend, and writes what became of each spec as markdown
# (hack/conformance-report).
#
#   hack/test-conformance.sh [--subset] [nftables] [iptables]
#
# Without --subset: every Netpol spec, selected as upstream CI selects them
# for a network plugin (focus Netpol, label Feature:NetworkPolicy); the
# report goes to docs/conformance.md. With --subset: the subset make test
# runs (hack/conformance-report/subset.go); the report goes to
# $CONFORMANCE_DIR/subset/conformance.md and is printed.
#
# CONFORMANCE_FOCUS=<regexp> runs only the Netpol specs it matches and
# CONFORMANCE_SKIP=<regexp> leaves more out; their report stays in
# $CONFORMANCE_DIR (default /tmp/palisade-conformance), beside each backend's
# JUnit report and logs. CONFORMANCE_REPORT=<file> writes the report there.
#
# Fails when a spec fails, is skipped without a known reason, or (subset)
# does not run. Needs root. The real-node cluster has fixed addresses, so one
# fits on a machine: the script holds $PALISADE_REALNODES_LOCK (default
# /tmp/palisade-realnodes.lock) from bring-up to teardown; a caller that
# holds it already sets PALISADE_REALNODES_LOCK_HELD=1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=lib/k8s-wrapper-module.sh
. "$HERE/lib/k8s-wrapper-module.sh"

set_name=full
if [ "${1:-}" = "--subset" ]; then
	set_name=subset
	shift
fi
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(nftables iptables)
focus_args=()
if [ -n "${CONFORMANCE_FOCUS:-}" ]; then
	[ "$set_name" = full ] || { echo "CONFORMANCE_FOCUS narrows the full set, not the subset" >&2; exit 2; }
	set_name=focus
	focus_args=(-focus "$CONFORMANCE_FOCUS")
fi
command="hack/test-conformance.sh $*"
command="${command% }"
case "$set_name" in
full) [ $# -gt 0 ] || command="make test-conformance" ;;
subset) command="hack/test-conformance.sh --subset $*"; [ $# -gt 0 ] || command="make test-conformance-subset" ;;
esac
[ -z "${CONFORMANCE_FOCUS:-}" ] || command="CONFORMANCE_FOCUS='$CONFORMANCE_FOCUS' $command"
[ -z "${CONFORMANCE_SKIP:-}" ] || command="CONFORMANCE_SKIP='$CONFORMANCE_SKIP' $command"

dir="${CONFORMANCE_DIR:-/tmp/palisade-conformance}/$set_name"
report="${CONFORMANCE_REPORT:-$dir/conformance.md}"
if [ "$set_name" = full ] && [ $# -eq 0 ] && [ -z "${CONFORMANCE_SKIP:-}" ] && [ -z "${CONFORMANCE_REPORT:-}" ]; then
	report="$ROOT/docs/conformance.md"
fi

started=$(date +%s)
ASSETS="$("$HERE/setup-real-nodes.sh" --conformance | tail -1)"
(cd "$ROOT" && mkdir -p bin && CGO_ENABLED=0 go build -o bin/ ./cmd/... &&
	for t in local-cluster podserver conformance-report; do CGO_ENABLED=0 go build -o "bin/$t" "./hack/$t"; done)

lock_wait=0
if [ "${PALISADE_REALNODES_LOCK_HELD:-}" != 1 ]; then
	lock="${PALISADE_REALNODES_LOCK:-/tmp/palisade-realnodes.lock}"
	exec 9>>"$lock"
	if ! flock -n 9; then
		echo "==> waiting for $lock: another real-node cluster is up" >&2
		waited=$(date +%s)
		flock 9
		lock_wait=$(($(date +%s) - waited))
	fi
	export PALISADE_REALNODES_LOCK_HELD=1
fi

state=""
# The cluster's daemons must not inherit the lock's descriptor (9>&-): one
# that outlived its cluster would hold the lock for good.
teardown() { [ -z "$state" ] || LOCAL_CLUSTER_DIR="$state" "$ROOT/bin/local-cluster" down >/dev/null 9>&- || true; }
trap teardown EXIT

# quote is a shell word for the report's command line: as it is when it
# needs no quoting, in single quotes when it does.
quote() {
	if [[ "$1" =~ ^[A-Za-z0-9_./=:,+-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

status=0
runs=()
for backend in "${backends[@]}"; do
	out="$dir/$backend"
	state="$out/cluster"
	rm -rf "$out"
	mkdir -p "$out"
	start=$(date +%s)
	mapfile -t selection < <("$ROOT/bin/conformance-report" flags -set "$set_name" -backend "$backend" \
		"${focus_args[@]}" -skip "${CONFORMANCE_SKIP:-}")
	[ ${#selection[@]} -gt 0 ] || { echo "conformance-report flags failed" >&2; exit 1; }
	e2e=("$ASSETS/netpol-e2e.test" --kubeconfig="$state/kubeconfig" --provider=local --report-dir="$out"
		"${selection[@]}" --ginkgo.no-color --ginkgo.timeout=2h --ginkgo.v)
	line=""
	for w in "${e2e[@]}"; do line+="$(quote "$w") "; done
	echo "${line% }" >"$out/e2e-command"

	echo "==> $backend: bringing up the real-node cluster" >&2
	teardown
	if ! LOCAL_CLUSTER_DIR="$state" "$ROOT/bin/local-cluster" up --real-nodes --backend "$backend" >"$out/up.log" 2>&1 9>&-; then
		cat "$out/up.log" >&2
		echo "==> $backend: the cluster did not come up; no specs ran" >&2
		status=1
		teardown
		state=""
		continue
	fi
	echo "==> $backend: running the $set_name set of Netpol specs; log in $out/e2e.log" >&2
	set +e
	"${e2e[@]}" >"$out/e2e.log" 2>&1 9>&-
	rc=$?
	set -e
	grep -E "^(Ran |SUCCESS|FAIL)" "$out/e2e.log" | tail -3 >&2 || true
	teardown
	state=""
	echo $(($(date +%s) - start)) >"$out/seconds"
	echo "==> $backend: e2e exit $rc after $(cat "$out/seconds") s" >&2
	[ $rc -eq 0 ] || status=1
	runs+=("$backend=$out")
done
trap - EXIT

if [ ${#runs[@]} -gt 0 ]; then
	mkdir -p "$(dirname "$report")"
	if ! "$ROOT/bin/conformance-report" report -set "$set_name" -out "$report" -command "$command" \
		-k8s-version "$K8S_VERSION" -revision "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
		-seconds $(($(date +%s) - started - lock_wait)) -lock-wait "$lock_wait" "${runs[@]}"; then
		status=1
	fi
	[ "$set_name" = full ] || cat "$report"
	echo "==> report: $report" >&2
fi
exit $status
