package render

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-dev/palisade/dataplane/verdictlog"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/textutil"
)

// Render returns the ruleset that enforces st, logging verdicts as opts
// say (by default with the default group, rate and burst). Equal states and
// options give deeply equal rulesets.
func Render(st *policy.State, opts ...Option) *Ruleset {
	o := Resolve(opts...)
	r := &renderer{sets: map[string]*Set{}, log: o.Log, chainNames: map[dirKey]string{}}
	policyChains := map[dirKey]bool{}

	base := baseChains()
	egressChain, ingressChain, inputChain, outputChain := base[0], base[1], base[2], base[3]
	egressChain.Rules = dispatchRules(MapEgress4, MapEgress6, false)
	ingressChain.Rules = dispatchRules(MapIngress4, MapIngress6, true)
	inputChain.Rules = dispatchRules(MapEgress4, MapEgress6, false)
	inputChain.Rules = slices.Insert(inputChain.Rules, 1, neighbourDiscovery()...)
	// The first base chain of each hook drops mid-stream TCP packets of
	// policed pods, right after the established accept.
	egressChain.Rules = slices.Insert(egressChain.Rules, 1, MidStreamRules()...)
	inputChain.Rules = slices.Insert(inputChain.Rules, 1, MidStreamRules()...)
	// The output hook holds nothing else: the node's own new connections
	// to pods (kubelet probes) are never judged.
	outputChain.Rules = OutputMidStreamRules()
	r.chains = []Chain{egressChain, ingressChain, inputChain, outputChain}
	r.sets[MapIngress4] = &Set{Name: MapIngress4, Kind: MapAddr4}
	r.sets[MapIngress6] = &Set{Name: MapIngress6, Kind: MapAddr6}
	r.sets[MapEgress4] = &Set{Name: MapEgress4, Kind: MapAddr4}
	r.sets[MapEgress6] = &Set{Name: MapEgress6, Kind: MapAddr6}
	policed4 := &Set{Name: SetPoliced4, Kind: SetAddr4}
	policed6 := &Set{Name: SetPoliced6, Kind: SetAddr6}
	r.sets[SetPoliced4], r.sets[SetPoliced6] = policed4, policed6
	for _, ip := range PolicedIPs(st) {
		s := policed4
		if ip.Is6() {
			s = policed6
		}
		s.Elements = append(s.Elements, Element{Addr: ip, AddrLast: ip})
	}

	for _, dir := range []policy.Direction{policy.Ingress, policy.Egress} {
		groups, m4, m6 := st.Ingress, MapIngress4, MapIngress6
		if dir == policy.Egress {
			groups, m4, m6 = st.Egress, MapEgress4, MapEgress6
		}
		for _, g := range groups {
			gc := Chain{Name: groupChainName(dir, g.Policies)}
			// Packets conntrack cannot place are dropped for policed pods:
			// they are neither part of an allowed connection nor a valid new
			// one. Audit-only pods are not policed: they pass, unlogged.
			final, logged := Drop, policy.LogDropped
			if g.AuditOnly() {
				final, logged = Accept, policy.LogAudited
			}
			gc.Rules = append(gc.Rules, Rule{CtState: CtInvalid, Verdict: final})
			for _, key := range g.Policies {
				name := r.policyChainName(dir, key)
				gc.Rules = append(gc.Rules, Rule{Verdict: Jump, Target: name})
				policyChains[dirKey{dir, key}] = true
			}
			if l, ok := r.logAction(logged, dir, g.Policies); ok {
				gc.Rules = append(gc.Rules, Rule{Log: l})
			}
			gc.Rules = append(gc.Rules, Rule{Verdict: final})
			r.chains = append(r.chains, gc)
			for _, ip := range g.IPs {
				m := r.sets[m4]
				if ip.Is6() {
					m = r.sets[m6]
				}
				m.Elements = append(m.Elements, Element{Addr: ip, Jump: gc.Name})
			}
		}
	}

	for _, pr := range st.Policies {
		for _, dir := range []policy.Direction{policy.Ingress, policy.Egress} {
			if !policyChains[dirKey{dir, pr.Key}] {
				continue
			}
			rules := pr.Ingress
			if dir == policy.Egress {
				rules = pr.Egress
			}
			pc := Chain{Name: r.policyChainName(dir, pr.Key)}
			for _, rule := range rules {
				pc.Rules = append(pc.Rules, r.policyRules(dir, rule)...)
			}
			if l, ok := r.logAction(policy.LogAllowed, dir, []string{pr.Key}); ok {
				// Every allowing rule goes to one chain per policy that logs,
				// then accepts: the log rule carries no verdict, so a packet
				// over the rate limit skips the log and is accepted all the
				// same (a limit in the accepting rule itself would make such a
				// packet fall through to the group's drop).
				// The allow chain is named after the policy chain.
				ac := Chain{Name: "a" + pc.Name, Rules: []Rule{{Log: l}, {Verdict: Accept}}}
				for i := range pc.Rules {
					if pc.Rules[i].Verdict == Accept {
						pc.Rules[i].Verdict, pc.Rules[i].Target = Jump, ac.Name
					}
				}
				r.chains = append(r.chains, ac)
			}
			r.chains = append(r.chains, pc)
		}
	}

	rs := &Ruleset{Table: o.Table}
	regular := r.chains[len(base):]
	slices.SortFunc(regular, func(a, b Chain) int { return cmp.Compare(a.Name, b.Name) })
	rs.Chains = r.chains
	for _, s := range r.sets {
		sortElements(s)
		rs.Sets = append(rs.Sets, *s)
	}
	slices.SortFunc(rs.Sets, func(a, b Set) int { return cmp.Compare(a.Name, b.Name) })
	return rs
}

type renderer struct {
	chains []Chain
	sets   map[string]*Set
	log    LogOptions
	// chainNames memoizes policyChainName: every group of a policy names
	// its chain.
	chainNames map[dirKey]string
}

// dirKey is a policy key in one direction.
type dirKey struct {
	dir policy.Direction
	key string
}

func (r *renderer) policyChainName(dir policy.Direction, key string) string {
	k := dirKey{dir, key}
	if n, ok := r.chainNames[k]; ok {
		return n
	}
	n := policyChainName(dir, key)
	r.chainNames[k] = n
	return n
}

// logAction is the log statement for a decision, unless logging is off.
func (r *renderer) logAction(v policy.LogVerdict, dir policy.Direction, policies []string) (Log, bool) {
	if r.log.Disabled {
		return Log{}, false
	}
	return Log{Prefix: verdictlog.Prefix(v, dir, policies), Group: r.log.Group, Rate: r.log.Rate, Burst: r.log.Burst}, true
}

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

// policyRules renders one NetworkPolicy rule.
func (r *renderer) policyRules(dir policy.Direction, rule policy.Rule) []Rule {
	var out []Rule
	portSet := ""
	if !rule.Ports.All && len(rule.Ports.Ranges) > 0 {
		portSet = r.portSet(rule.Ports.Ranges)
	}
	numeric := rule.Ports.All || portSet != ""
	if rule.Peers.All {
		if numeric {
			out = append(out, Rule{ProtoPortSet: portSet, Verdict: Accept})
		}
	}
	for _, fam := range []Family{Family4, Family6} {
		peerSet := ""
		if !rule.Peers.All {
			peerSet = r.peerSet(fam, rule.Peers)
		}
		base := Rule{Family: fam}
		if dir == policy.Ingress {
			base.SaddrSet = peerSet
		} else {
			base.DaddrSet = peerSet
		}
		if numeric && peerSet != "" {
			nr := base
			nr.ProtoPortSet = portSet
			nr.Verdict = Accept
			out = append(out, nr)
		}
		if rule.Ports.NamedID != "" {
			nr := base
			if dir == policy.Egress {
				// The model resolves egress named ports only on destinations
				// inside the peers, so the triple says it all.
				nr.DaddrSet = ""
			}
			nr.DaddrProtoPortSet = r.namedSet(fam, rule.Ports)
			nr.Verdict = Accept
			out = append(out, nr)
		}
	}
	return out
}

func (r *renderer) peerSet(fam Family, p policy.Peers) string {
	name := "peer" + strconv.Itoa(int(fam)) + "-" + idTag(p.ID)
	if r.sets[name] != nil {
		return name
	}
	s := &Set{Name: name, Kind: SetAddr4}
	if fam == Family6 {
		s.Kind = SetAddr6
	}
	for _, rg := range p.Ranges {
		if rg.Is4() == (fam == Family4) {
			s.Elements = append(s.Elements, Element{Addr: rg.First, AddrLast: rg.Last})
		}
	}
	r.sets[name] = s
	return name
}

func (r *renderer) portSet(ranges []policy.PortRange) string {
	elems := make([]Element, 0, len(ranges))
	// The name hashes "proto:first-last," for each range.
	b := make([]byte, 0, 16*len(ranges))
	for _, pr := range ranges {
		proto, _ := policy.ProtocolNumber(pr.Protocol)
		elems = append(elems, Element{Proto: proto, Port: pr.First, PortLast: pr.Last})
		b = strconv.AppendUint(b, uint64(proto), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(pr.First), 10)
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(pr.Last), 10)
		b = append(b, ',')
	}
	name := "ports-" + hash(string(b))
	if r.sets[name] == nil {
		r.sets[name] = &Set{Name: name, Kind: SetProtoPort, Elements: elems}
	}
	return name
}

func (r *renderer) namedSet(fam Family, p policy.Ports) string {
	name := "named" + strconv.Itoa(int(fam)) + "-" + idTag(p.NamedID)
	if r.sets[name] != nil {
		return name
	}
	s := &Set{Name: name, Kind: SetAddr4ProtoPort}
	if fam == Family6 {
		s.Kind = SetAddr6ProtoPort
	}
	for _, n := range p.Named {
		if n.IP.Is4() == (fam == Family4) {
			proto, _ := policy.ProtocolNumber(n.Protocol)
			s.Elements = append(s.Elements, Element{Addr: n.IP, Proto: proto, Port: n.Port})
		}
	}
	r.sets[name] = s
	return name
}

func sortElements(s *Set) {
	// Peer sets come from sorted ranges: most need no sorting.
	if !slices.IsSortedFunc(s.Elements, CompareElements) {
		slices.SortFunc(s.Elements, CompareElements)
	}
	s.Elements = slices.CompactFunc(s.Elements, func(a, b Element) bool { return CompareElements(a, b) == 0 })
}

// CompareElements is the order of Set.Elements in a rendered ruleset (a
// total order: 0 only for equal elements), which lets backends diff two
// sets in one merge pass.
func CompareElements(a, b Element) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port),
		a.AddrLast.Compare(b.AddrLast), cmp.Compare(a.PortLast, b.PortLast), cmp.Compare(a.Jump, b.Jump))
}

// Chain names are short, deterministic and readable: a hash of what the chain
// stands for, then a readable tail (kube-proxy names its chains this way).
func groupChainName(dir policy.Direction, policies []string) string {
	tail := policies[0]
	if len(policies) > 1 {
		tail += "_and_" + strconv.Itoa(len(policies)-1)
	}
	return dirPrefix(dir) + "-" + hash(strings.Join(policies, "\x00")) + "-" + readable(tail, 64)
}

func policyChainName(dir policy.Direction, key string) string {
	return "p" + dirPrefix(dir) + "-" + hash(key) + "-" + readable(key, 96)
}

// readable is the readable tail of a chain name: nft's grammar takes no
// ':' in an unquoted name, so the audit key prefix becomes "audit.".
func readable(key string, n int) string {
	return textutil.Truncate(strings.ReplaceAll(key, ":", "."), n)
}

func dirPrefix(dir policy.Direction) string {
	if dir == policy.Egress {
		return "eg"
	}
	return "in"
}

// hashLen is how many hex digits of a hash or model ID name an object.
const hashLen = 10

// hash is the first hashLen hex digits of the SHA-256 of s.
func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:hashLen/2])
}

// idTag is the part of a model ID (policy.Peers.ID, policy.Ports.NamedID,
// longer hashes) that names a set.
func idTag(id string) string { return textutil.Truncate(id, hashLen) }
