// Package reliability holds the long fault and load scenarios of issue 7
// (crash mid-update, graceful restart, cold start, API server outage, stale
// state, connection cut, load) on the local cluster of internal/localcluster. They
// run with `make test-reliability` (build tag reliability, root); each
// scenario writes its figures to a JSON file and the run regenerates
// docs/reliability.md from them. RELIABILITY_QUICK=1 shortens the long ones.
package reliability
