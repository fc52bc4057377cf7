package render

import (
	"net/netip"
	"slices"

	"github.com/palisade-dev/palisade/internal/policy"
)

// This file holds the static rules of the base chains: the established
// accept, the dispatch to the group chains, the mid-stream drops and
// neighbour discovery.

// dispatchRules accept established packets and send the rest through the
// dispatch maps m4 and m6 (keyed by source, or by destination when byDaddr)
// to the group chain of the pod.
func dispatchRules(m4, m6 string, byDaddr bool) []Rule {
	r4 := Rule{Family: Family4, SaddrMap: m4}
	r6 := Rule{Family: Family6, SaddrMap: m6}
	if byDaddr {
		r4 = Rule{Family: Family4, DaddrMap: m4}
		r6 = Rule{Family: Family6, DaddrMap: m6}
	}
	return []Rule{{CtState: CtEstablishedRelated, Verdict: Accept}, r4, r6}
}

// MidStreamRules drop a TCP packet that would start a conntrack entry
// without being a pure SYN, to or from a policed local pod.
//
// With nf_conntrack_tcp_loose=1 (the default) conntrack picks up a TCP
// connection in the middle: an ACK or data segment with no entry becomes a
// new entry in the direction of that packet. When the cutter
// (dataplane/conntrack) deletes the entry of a connection a tightened policy
// denies, the server's next retransmission would be such a packet, in the
// server→client direction, which an ingress-only policy on the server does
// not judge (neither end is isolated that way): it would pass, create an
// entry, and the client's packets would then pass as its replies. The cut
// connection would revive. A connection of a policed pod must start with a
// SYN, which the policies judge in the direction the client opened it.
//
// The rules are static; the pods are elements of SetPoliced4/SetPoliced6.
func MidStreamRules() []Rule {
	var out []Rule
	for _, fam := range []struct {
		f   Family
		set string
	}{{Family4, SetPoliced4}, {Family6, SetPoliced6}} {
		out = append(out,
			Rule{Family: fam.f, CtState: CtNew, TCPNotSYN: true, SaddrSet: fam.set, Verdict: Drop},
			Rule{Family: fam.f, CtState: CtNew, TCPNotSYN: true, DaddrSet: fam.set, Verdict: Drop})
	}
	return out
}

// OutputMidStreamRules are the destination half of MidStreamRules, for the
// output hook: a TCP packet the node itself sends to a policed local pod that
// would start a conntrack entry without being a pure SYN is dropped.
//
// The input hook judges a pod's connection to the node itself (a server in
// the node's namespace or a hostNetwork pod) by the pod's egress policy.
// When the cutter deletes the entry of such a connection, the node's next
// retransmission leaves through the output hook; with nf_conntrack_tcp_loose
// it would start an entry node→pod, and the pod's packets would then pass
// input-egress as that entry's replies: the cut connection would revive.
// Only mid-stream packets are dropped: the node's new connections to pods
// (SYN first: kubelet probes) still pass even under default deny.
func OutputMidStreamRules() []Rule {
	return []Rule{
		{Family: Family4, CtState: CtNew, TCPNotSYN: true, DaddrSet: SetPoliced4, Verdict: Drop},
		{Family: Family6, CtState: CtNew, TCPNotSYN: true, DaddrSet: SetPoliced6, Verdict: Drop},
	}
}

// PolicedIPs returns the addresses of the local pods that a policy isolates
// in either direction, sorted and without duplicates. Audit-only groups are
// not isolated and are left out.
func PolicedIPs(st *policy.State) []netip.Addr {
	var out []netip.Addr
	for _, groups := range [][]policy.Group{st.Ingress, st.Egress} {
		for _, g := range groups {
			if !g.AuditOnly() {
				out = append(out, g.IPs...)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// ICMPv6 neighbour discovery types (RFC 4861).
const (
	icmpv6RouterSolicit   = 133
	icmpv6NeighborSolicit = 135
	icmpv6NeighborAdvert  = 136
)

// neighbourDiscovery accepts what a pod sends the node to find its gateway
// and to answer the node's solicitations. Conntrack calls these packets
// invalid, so neither the established rule nor a policy would ever let them
// through (see "What is not filtered" in the package documentation).
func neighbourDiscovery() []Rule {
	var out []Rule
	for _, typ := range []uint8{icmpv6RouterSolicit, icmpv6NeighborSolicit, icmpv6NeighborAdvert} {
		out = append(out, Rule{Family: Family6, ICMPv6Type: typ, Verdict: Accept})
	}
	return out
}
