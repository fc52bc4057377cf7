// Package render turns a policy.State into the nftables ruleset that
// enforces it: a plain Go description of table inet palisade (chains, rules,
// sets, maps, elements) that dataplane/nft programs through netlink and that
// prints as `nft -f` text. It is pure: no netlink, no API.
//
// # Layout of table inet palisade
//
//	chain egress         hook forward priority filter - 10, policy accept
//	chain ingress        hook forward priority filter,      policy accept
//	chain input-egress   hook input   priority filter - 10, policy accept
//	chain output-midstream hook output priority filter - 10, policy accept
//
// The forward and input base chains first accepts `ct state established,related` (replies and
// related flows of connections that were allowed when they started), then
// dispatches with one verdict-map lookup on the local pod's address
// (`ip saddr vmap @egress4` and so on) to the chain of the pod's group. Pods
// not in the map are not isolated in that direction and fall through to the
// chain policy, accept. An accept in one base chain lets the packet continue
// to the next base chain of the same hook, so pod-to-pod traffic inside the
// node must pass both the source's egress chain and the destination's
// ingress chain; a drop anywhere is final.
//
// Right after the established accept, the first base chain of each hook
// (egress for forward, input-egress for input) drops a TCP packet that
// conntrack calls new but that is not a pure SYN, from or to a policed pod:
//
//	ct state new tcp flags & (fin | syn | rst | ack) != syn ip saddr @policed4 drop
//	ct state new tcp flags & (fin | syn | rst | ack) != syn ip daddr @policed4 drop
//
// and the same for ip6 and @policed6. The sets hold every local pod that a
// non-audit group isolates in either direction (audit-only pods are not
// isolated). See MidStreamRules for why; the ingress chain needs no copy,
// the egress chain sees every forwarded packet first.
//
// The output hook's chain holds the destination half only and nothing else
// (OutputMidStreamRules):
//
//	ct state new tcp flags & (fin | syn | rst | ack) != syn ip daddr @policed4 drop
//
// (and ip6 / @policed6): a cut connection between a pod and the node itself
// stays cut when the node retransmits first, while the node's new
// connections to pods (a SYN: kubelet probes) pass under default deny.
//
// A group chain (`in-<hash>` / `eg-<hash>`) drops `ct state invalid`, jumps
// to the chain of each of its policies and then drops. A policy chain holds
// one rule per NetworkPolicy rule and family, e.g.
//
//	ip saddr @peer4-<id> meta l4proto . th dport @ports-<hash> accept
//	ip saddr @peer4-<id> ip daddr . meta l4proto . th dport @named4-<id> accept
//
// Before an agent's first sync on a new node (no table, no saved state) the
// table holds ColdStart instead: the forward base chains, egress jumping to a
// chain that drops every new forwarded connection until the first sync
// replaces it.
//
// # Verdict log
//
// Unless logging is disabled (Options), decisions are logged to NFLOG
// (`log group` verdictlog.DefaultGroup) with a prefix that verdictlog.Table
// decodes (see verdictlog.Prefix), rate-limited in the kernel per log rule
// (`limit rate …`):
//
//   - Allowed: a policy chain's allowing rules jump to the policy's allow
//     chain (`ain-…` / `aeg-…`), which logs and accepts. Only new
//     connections get there (established ones are accepted first), so each
//     allowed connection is logged once per direction, naming the first
//     policy of the group (in key order) that allowed it.
//   - Dropped: the group chain logs before its final drop, naming the
//     group's policies.
//   - Audited: a group of audit policies only (policy.Group.AuditOnly) is
//     not isolated: its chain accepts conntrack-invalid packets, jumps to its
//     policies (whose allows log Allowed), then logs Audited and accepts.
//
// The limit sits in the log rule, never in a rule with a verdict: a packet
// over the limit only skips the log and meets the same verdict. Log rules
// are one per policy and direction and one per group, so the rule count
// still does not grow with pods.
//
// Peers live in interval sets named after the peer definition (so pod churn
// changes set elements, never rules), ports in concatenated interval sets
// deduplicated by content, named ports in (address, protocol, port) sets.
// Rule count grows with policy rules, never with pods; per-packet cost is
// one hash lookup plus a few set lookups per policy of the pod's group.
//
// # What is not filtered, and why
//
//   - Traffic the node itself sends to its pods leaves through the output
//     hook, whose chain judges no policy: kubelet probes must reach pods even
//     under default deny (kubernetes-sigs/kube-network-policies#65). Replies
//     to it are established. Only a TCP packet that would start a conntrack
//     entry without being a SYN is dropped there (see above).
//   - Traffic of hostNetwork pods is the node's own traffic (see above and the
//     policy package): they are never targets.
//   - Packets of connections that were allowed when they started
//     (established, related) pass even after a policy change; upstream leaves
//     this implementation-defined (kubernetes/website#43438). The agent's
//     conntrack cutter deletes the entries a new state denies, and the
//     mid-stream rules above keep a cut connection from reviving: with
//     nf_conntrack_tcp_loose=1 (the default) the server's retransmission
//     would start a new entry in the server→client direction, which an
//     ingress-only policy does not judge, and the client's packets would
//     pass as its replies. The output chain does the same for a connection
//     between a policed pod and the node itself, which the node's
//     retransmission would otherwise revive. The price: a policed pod's TCP
//     connection whose entry is lost for any other reason (conntrack table
//     flushed or full), the node's own connections to it included, cannot be
//     picked up again and must reconnect.
//   - UDP has no handshake to tell a first packet from a later one: a cut
//     UDP flow (to a pod, or between a pod and the node) revives when the
//     side no policy judges in that direction sends first, the node's output
//     included. The cutter's revival pass (dataplane/conntrack) deletes
//     such an entry again when it reuses the cut flow's exact tuple and
//     appears within about 3 s of the cut; one that appears later stands
//     until it expires.
//   - Remote pods' traffic that only transits this node to a remote pod is
//     judged where the pods live: only local pods are in the maps.
//   - IPv6 neighbour discovery from a pod to the node (router solicitation,
//     neighbour solicitation and advertisement) in input-egress: conntrack
//     calls these packets invalid (nf_conntrack_proto_icmpv6 tracks only
//     echo and node-information requests as new), so without this exemption
//     an egress-isolated IPv6 pod cannot resolve its gateway nor answer the
//     node's solicitations and loses its allowed flows too
//     (kubernetes-sigs/kube-network-policies#191). IPv4's ARP is not IP and
//     never reaches these hooks.
package render

import (
	"net/netip"
)

// TableName is the default name of Palisade's private inet table
// (WithTable names another).
const TableName = "palisade"

// Ruleset is the whole desired content of Palisade's inet table.
type Ruleset struct {
	// Table is the name of the inet table; "" means TableName.
	Table string
	// Sets holds sets and verdict maps, sorted by name.
	Sets []Set
	// Chains holds the base chains first (in baseChains order), then the
	// regular chains sorted by name.
	Chains []Chain
}

// Hook is a netfilter hook of a base chain.
type Hook string

const (
	HookForward Hook = "forward"
	HookInput   Hook = "input"
	HookOutput  Hook = "output"
)

// Chain is a chain with its rules.
type Chain struct {
	Name string
	// Hook and Priority are set for base chains only (type filter, policy
	// accept).
	Hook     Hook
	Priority int
	Rules    []Rule
}

// IsBase tells whether the chain is attached to a hook.
func (c *Chain) IsBase() bool { return c.Hook != "" }

// SetKind is the key (and value) type of a set.
type SetKind int

const (
	// SetAddr4 and SetAddr6 are interval sets of addresses.
	SetAddr4 SetKind = iota + 1
	SetAddr6
	// SetProtoPort is an interval set of `inet_proto . inet_service`.
	SetProtoPort
	// SetAddr4ProtoPort and SetAddr6ProtoPort are exact sets of
	// `ipv4_addr . inet_proto . inet_service`.
	SetAddr4ProtoPort
	SetAddr6ProtoPort
	// MapAddr4 and MapAddr6 are verdict maps keyed by address.
	MapAddr4
	MapAddr6
)

// Interval tells whether the set holds ranges.
func (k SetKind) Interval() bool { return k == SetAddr4 || k == SetAddr6 || k == SetProtoPort }

// IsMap tells whether the set is a verdict map.
func (k SetKind) IsMap() bool { return k == MapAddr4 || k == MapAddr6 }

// Set is a named set or verdict map.
type Set struct {
	Name     string
	Kind     SetKind
	Elements []Element
}

// Element is one set element. Which fields are used depends on the kind:
// Addr..AddrLast for address sets, Proto and Port..PortLast for port sets,
// Addr, Proto and Port for named-port sets, Addr and Jump for maps.
type Element struct {
	Addr     netip.Addr
	AddrLast netip.Addr
	Proto    uint8
	Port     uint16
	PortLast uint16
	// Jump is the chain a map element jumps to.
	Jump string
}

// Family restricts a rule to one address family.
type Family uint8

const (
	FamilyAny Family = 0
	Family4   Family = 4
	Family6   Family = 6
)

// CtState is a conntrack state match.
type CtState uint8

const (
	CtNone CtState = iota
	CtEstablishedRelated
	CtInvalid
	CtNew
)

// Verdict is what a rule does when it matches.
type Verdict uint8

const (
	// VerdictNone is for rules whose only action is a verdict-map lookup.
	VerdictNone Verdict = iota
	Accept
	Drop
	Jump
)

// Rule is one rule: all set matches must hold, then Verdict applies. The
// matches are the few this ruleset needs, so backends and the tracer can
// handle each of them explicitly.
type Rule struct {
	Family  Family
	CtState CtState
	// SaddrSet and DaddrSet: `ip[6] saddr|daddr @set`.
	SaddrSet string
	DaddrSet string
	// ProtoPortSet: `meta l4proto . th dport @set`.
	ProtoPortSet string
	// DaddrProtoPortSet: `ip[6] daddr . meta l4proto . th dport @set`.
	DaddrProtoPortSet string
	// ICMPv6Type, when not 0: `icmpv6 type N` (IPv6 only).
	ICMPv6Type uint8
	// TCPNotSYN: `tcp flags & (fin | syn | rst | ack) != syn`, a TCP
	// packet other than a pure SYN (see MidStreamRules).
	TCPNotSYN bool
	// SaddrMap and DaddrMap: `ip[6] saddr|daddr vmap @map`.
	SaddrMap string
	DaddrMap string
	// Log, when its Prefix is set, sends the packet to NFLOG (`limit rate
	// … log group … prefix …`). A rule with a Log has no verdict: packets
	// continue to the next rule whether they were logged or over the limit.
	Log     Log
	Verdict Verdict
	// Target is the chain of a Jump.
	Target string
}

// Log is a rate-limited NFLOG statement.
type Log struct {
	// Prefix identifies the decision (see verdictlog.Prefix); "" means no log.
	Prefix string
	Group  uint16
	// Rate (packets per second) and Burst bound how often the rule logs.
	Rate  uint32
	Burst uint32
}

// Base chains, in the order they appear in a Ruleset (see baseChains).
const (
	ChainEgress          = "egress"
	ChainIngress         = "ingress"
	ChainInputEgress     = "input-egress"
	ChainOutputMidStream = "output-midstream"
)

// basePriority is the priority of the first base chain of each hook
// (filter - 10); the ingress chain runs after egress at filter.
const basePriority = -10

// baseChains returns the base chains, empty, in the order they appear in a
// Ruleset.
func baseChains() []Chain {
	return []Chain{
		{Name: ChainEgress, Hook: HookForward, Priority: basePriority},
		{Name: ChainIngress, Hook: HookForward, Priority: 0},
		{Name: ChainInputEgress, Hook: HookInput, Priority: basePriority},
		{Name: ChainOutputMidStream, Hook: HookOutput, Priority: basePriority},
	}
}

// table is the name of the table the ruleset goes to.
func (rs *Ruleset) table() string {
	if rs.Table == "" {
		return TableName
	}
	return rs.Table
}

// Map names.
const (
	MapIngress4 = "ingress4"
	MapIngress6 = "ingress6"
	MapEgress4  = "egress4"
	MapEgress6  = "egress6"
)

// Set names of the policed local pods: every address in a non-audit group
// of either direction (see MidStreamRules).
const (
	SetPoliced4 = "policed4"
	SetPoliced6 = "policed6"
)

// Counts returns the number of rules and of set and map elements.
func (rs *Ruleset) Counts() (rules, elements int) {
	for _, c := range rs.Chains {
		rules += len(c.Rules)
	}
	for _, s := range rs.Sets {
		elements += len(s.Elements)
	}
	return rules, elements
}

// Set returns the set with the given name, or nil.
func (rs *Ruleset) Set(name string) *Set {
	for i := range rs.Sets {
		if rs.Sets[i].Name == name {
			return &rs.Sets[i]
		}
	}
	return nil
}

// Chain returns the chain with the given name, or nil.
func (rs *Ruleset) Chain(name string) *Chain {
	for i := range rs.Chains {
		if rs.Chains[i].Name == name {
			return &rs.Chains[i]
		}
	}
	return nil
}
