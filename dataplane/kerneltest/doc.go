// Package kerneltest holds the dataplane's real-kernel, real-traffic tests
// (root only; CI runs as root). They wire network namespaces as pods routed
// through node namespaces (dataplane/internal/netnstest), program them with
// each backend (nftables and iptables), and judge NetworkPolicy semantics by
// real TCP and UDP connections and SCTP INIT chunks between the pods:
//
//   - semantics_test.go: one table of cases, each a set of NetworkPolicies and
//     the reachability it must give; the expectations are also checked
//     against policytest.OracleAllows so that they stay honest.
//   - invalid_test.go: conntrack-invalid segments are dropped for policed pods.
//   - midstream_test.go: a connection cut by the conntrack cutter stays cut
//     (TCP pickups without SYN to or from policed pods are dropped).
//   - midstream_node_test.go: the same for a pod's connection to a server on
//     its own node, which the node's retransmission would revive through the
//     output hook; the node's new connections to the pod still pass.
//   - flowlog_test.go: the verdict log (NFLOG) of both backends, Audit mode
//     and the log rate limit under a SYN flood.
//   - agent_flows_test.go: agent, kernel and API server: flows reach the
//     node's NodeFlowReport.
//   - agent_test.go: the agent's sync loop against a real API server
//     (envtest), policies created, changed and deleted through the API.
//   - restart_test.go: agent restarts (in process, and the real binary killed
//     with SIGKILL) with a connection carrying data all along; nothing denied
//     passes while the agent is down.
//   - replace_test.go: a new agent's first sync replaces a stale ruleset with
//     no window in which denied traffic passes.
//   - coldstart_test.go: on a bare node the cold start drops new forwarded
//     connections and keeps established ones and the node's own traffic;
//     the first sync replaces it without a trace; the agent binary programs
//     it without an API server.
//   - coexist_test.go: other software's nftables tables and iptables rules
//     stay byte-identical through 100 syncs and a restart, and Uninstall
//     leaves the firewall exactly as it found it.
//
// The package has no non-test code.
package kerneltest
