#!/usr/bin/env bash
# Runs the reliability scenarios (e2e/reliability) on a local cluster and
# regenerates docs/reliability.md. Root needed. RELIABILITY_QUICK=1 shortens
# the long scenarios (API outage 45s instead of 5 min, smaller load);
# RELIABILITY_RUN selects scenarios (a go test -run pattern).
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBEBUILDER_ASSETS="$(hack/setup-test-env.sh)"
exec go test -count=1 -p 1 -v -timeout 40m -tags reliability -run "${RELIABILITY_RUN:-.}" ./e2e/reliability/
