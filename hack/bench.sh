#!/usr/bin/env bash
# Runs Palisade's benchmarks (issue 6) and regenerates docs/benchmarks.md and
# bench/results/. Needs root (network namespaces, nftables). Sets up what it
# needs: the test environment (etcd, kube-apiserver), iperf3 and strace from
# Debian, the binaries (the harness builds agent, controller, podserver and
# local-cluster into bench/tmp/bin for measurements 1, 6 and 7, which run on
# local clusters of internal/localcluster in bench/tmp/cluster-*).
#
#   hack/bench.sh                # full variant, under 15 minutes on 2 cores
#   BENCH_QUICK=1 hack/bench.sh  # quick variant, under 3 minutes
#   BENCH_ONLY=M2,M5 hack/bench.sh
#
# Every network namespace it creates is named pbn-* (the local clusters use
# the prefix pbn too); they are removed at the end, also when interrupted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "bench: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
	log "needs root (network namespaces, nftables)"; exit 1
fi

need=()
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
command -v strace >/dev/null 2>&1 || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

ASSETS="$(hack/setup-test-env.sh | tail -n1)"
export KUBEBUILDER_ASSETS="$ASSETS"
export GOFLAGS=-buildvcs=false
mkdir -p bin bench/results docs
CGO_ENABLED=0 go build -o bin/palisade-bench ./bench/cmd/palisade-bench

quick=()
benchtime=2s
count=3
if [ "${BENCH_QUICK:-}" = 1 ]; then
	quick=(--quick)
	benchtime=200ms
	count=1
fi

cleanup() {
	# What a killed harness left: the processes it started (pid files in
	# bench/tmp/logs, checked against the binary), the local clusters of
	# measurements 1, 6 and 7 (internal/localcluster's down), then namespaces.
	for f in bench/tmp/logs/*.pid; do
		[ -e "$f" ] || continue
		pid="$(cat "$f")"
		case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
		"$PWD"/bench/tmp/bin/*) kill -9 "$pid" 2>/dev/null || true ;;
		esac
		rm -f "$f"
	done
	for d in bench/tmp/cluster-*; do
		[ -e "$d/state.json" ] || continue
		LOCAL_CLUSTER_DIR="$d" bench/tmp/bin/local-cluster down >&2 || true
	done
	# Only namespaces this harness names; a crashed run may leave them.
	for ns in $(ip netns list | awk '{print $1}' | grep '^pbn-' || true); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
}
trap cleanup EXIT

micro="$(mktemp /tmp/pbn-micro.XXXXXX)"
log "Go micro-benchmarks (-benchmem, ${benchtime} x${count})"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" -count "$count" \
	./internal/intent/compiler/ ./internal/policy/ ./dataplane/render/ | tee "$micro" >&2

start=$(date +%s)
bin/palisade-bench run "${quick[@]}" --micro "$micro" --repo . --assets "$ASSETS" ${BENCH_ONLY:+--only "$BENCH_ONLY"}
rm -f "$micro"
log "harness done in $(( $(date +%s) - start ))s; see docs/benchmarks.md"
