// Package policy turns Kubernetes NetworkPolicies, pods and namespaces into
// the backend-neutral state one node must enforce. It is pure: no API calls,
// no netlink, no clock. The nftables and iptables backends render its output.
//
// # The model
//
// Compute takes an Input (the node's name and every NetworkPolicy, Namespace
// and Pod of the cluster, the pods already reduced to the few fields that
// matter) and returns a State:
//
//   - Ingress and Egress hold Groups. A group is one distinct, sorted list of
//     policies together with the local pods selected by exactly that list (for
//     that direction). A local pod is one scheduled on this node, not
//     hostNetwork, not finished, with at least one IP. A local pod in no group
//     for a direction is not isolated in that direction: all its traffic that
//     way passes, as NetworkPolicy v1 says.
//   - Policies holds, for each policy that selects at least one local pod, its
//     Rules per direction. A packet passes a group when any rule of any of the
//     group's policies allows it; otherwise it is dropped.
//   - A Rule is Peers × Ports. Peers is either All or sorted, merged IP ranges
//     of both families: the pod IPs of the selected peer pods (/32 and /128) and
//     the ipBlock CIDRs with their `except` ranges cut out. Ports is either All,
//     or numeric protocol+port ranges (port..endPort) plus named ports already
//     resolved to (IP, protocol, port) triples: for ingress against the
//     selected local target pods' container ports, for egress against the
//     destination peer pods' container ports. A packet matches a rule when its
//     remote address is in Peers and either its protocol and destination port
//     are in a numeric range or its (destination IP, protocol, port) is a
//     named triple.
//
// Because pods only ever appear as members of IP ranges, sets and triples, a
// backend can keep its rule count proportional to the number of policy rules
// and put everything that grows with pods into set elements.
//
// Peers and named-port lists carry stable IDs derived from the policy text,
// not from the resolved addresses, so a backend can name its sets after them
// and keep the names (and the rules that refer to them) unchanged while pods
// come and go: pod churn then changes set elements only.
//
// # Semantics (NetworkPolicy v1, as the upstream conformance suite expects)
//
//   - policyTypes: when empty, Ingress always, plus Egress when spec.egress
//     has rules. A policy isolates its pods only in the directions it names.
//   - An empty podSelector selects every pod of the policy's namespace. A peer
//     with only podSelector selects pods of the policy's namespace; only
//     namespaceSelector selects every pod of matching namespaces; both select
//     pods matching podSelector in namespaces matching namespaceSelector. An
//     empty from/to list means every peer (including outside the cluster); a
//     rule with an empty ports list allows every protocol and port.
//   - Protocol defaults to TCP. A port without a number allows every port of
//     its protocol. endPort makes an inclusive range.
//   - Peers in the from/to list are ORed, rules are ORed, policies add up.
//   - Pods without an IP, finished pods (Succeeded/Failed, whose IPs may be
//     reused) and hostNetwork pods are never peers by selector and never
//     targets: a hostNetwork pod shares the node's addresses, so policing it
//     would police the node. ipBlock is how to allow node addresses.
//
// # Audit policies
//
// Input.AuditPolicies are policies the agent compiled from Audit-mode
// intents. They are computed like the others, under the key
// AuditKey(namespace, name) ("audit:namespace/name") and with
// PolicyRules.Audit set, and group pods per direction as follows:
//
//   - A pod that at least one enforce policy selects in a direction is
//     grouped by its enforce policies only: the audit policies selecting it
//     are left out of its group and change no verdict (what is in force
//     decides; the audit intent only tells what it would do alone).
//   - A pod selected in a direction by audit policies only is in an
//     audit-only group (Group.AuditOnly): it is not isolated, every packet
//     passes. The backends log a packet one of its audit policies allows as
//     Allowed with that policy, and any other as Audited with the group's
//     policies.
//
// State.Allows and State.Decide (what the backends log) give the reference
// meaning; policytest.OracleAllows and OracleDecide give the same from the
// API objects.
//
// # Failing closed
//
// Malformed data never widens what is allowed and never panics: an
// unparseable CIDR or except, an invalid selector, a peer with no selector
// and no ipBlock, a port outside 1..65535, a named port with endPort, or an
// unknown protocol makes that peer or port match nothing, and the problem is
// reported in State.Errors for its policy. A policy whose own podSelector is
// invalid selects every pod of its namespace (in the directions it names) and
// allows nothing, so the pods it meant to protect stay protected.
package policy
