package iptables

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/dataplane/verdictlog"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/textutil"
)

// dispatchLeaf is the most addresses a dispatch chain matches one by one
// before it splits into a prefix tree.
const dispatchLeaf = 16

// maxComment bounds comments (the kernel allows 256 bytes).
const maxComment = 200

// Render returns the chains that enforce st for one family, logging
// verdicts as opts say (the same prefixes as the nftables ruleset, see
// verdictlog.Prefix). It is pure and deterministic: equal states and options
// give equal rulesets.
func Render(st *policy.State, fam Family, markBit uint32, opts ...render.Option) *Ruleset {
	r := &renderer{fam: fam, chains: map[string]*Chain{}, log: render.Resolve(opts...).Log}
	est := Rule{CtState: "RELATED,ESTABLISHED", Target: Return}
	midStream := Rule{CtState: "NEW", Proto: protoTCP, TCPNotSYN: true, Target: Jump, Chain: ChainMidStream}
	forward := Chain{Name: ChainForward, Rules: []Rule{
		est,
		midStream,
		{Target: Jump, Chain: ChainEgress},
		{Target: Jump, Chain: ChainIngress},
	}}
	input := Chain{Name: ChainInput, Rules: []Rule{est, midStream}}
	if fam == IPv6 {
		// kubernetes-sigs/kube-network-policies#191: an egress-isolated
		// pod must still resolve its gateway and answer the node.
		for _, typ := range []uint8{133, 135, 136} {
			input.Rules = append(input.Rules, Rule{Proto: protoICMPv6, ICMPv6Type: typ, Target: Return})
		}
	}
	input.Rules = append(input.Rules, Rule{Target: Jump, Chain: ChainEgress})
	// The node's own packets: only a mid-stream pickup towards a policed
	// pod is dropped (the destination dispatch of the mid-stream chains).
	output := Chain{Name: ChainOutput, Rules: []Rule{
		{CtState: "NEW", Proto: protoTCP, TCPNotSYN: true, Target: Jump, Chain: ChainMidStreamDst},
	}}

	rules := map[string]*policy.PolicyRules{}
	for i := range st.Policies {
		rules[st.Policies[i].Key] = &st.Policies[i]
	}
	egress := r.direction(policy.Egress, st.Egress, rules)
	ingress := r.direction(policy.Ingress, st.Ingress, rules)
	r.dispatch(ChainEgress, ChainEgress, false, egress)
	r.dispatch(ChainIngress, ChainIngress, true, ingress)
	r.chains[ChainMidStream] = &Chain{Name: ChainMidStream, Rules: []Rule{
		{Target: Jump, Chain: ChainMidStreamSrc},
		{Target: Jump, Chain: ChainMidStreamDst},
	}}
	var policed []dispatchEntry
	for _, ip := range render.PolicedIPs(st) {
		if r.ours(ip) {
			policed = append(policed, dispatchEntry{ip: ip, drop: true})
		}
	}
	r.dispatch(ChainMidStreamSrc, ChainMidStreamSrc, false, policed)
	r.dispatch(ChainMidStreamDst, ChainMidStreamDst, true, slices.Clone(policed))

	rs := &Ruleset{Family: fam, MarkBit: markBit}
	rs.Chains = append(rs.Chains, forward, input, output, *r.chains[ChainEgress], *r.chains[ChainIngress])
	var rest []Chain
	for name, c := range r.chains {
		if name != ChainEgress && name != ChainIngress {
			rest = append(rest, *c)
		}
	}
	slices.SortFunc(rest, func(a, b Chain) int { return cmp.Compare(a.Name, b.Name) })
	rs.Chains = append(rs.Chains, rest...)
	return rs
}

type renderer struct {
	fam    Family
	chains map[string]*Chain
	log    render.LogOptions
}

// logRule is the NFLOG rule of a decision; ok is false when logging is off.
func (r *renderer) logRule(v policy.LogVerdict, dir policy.Direction, policies []string, mark MarkMatch) (Rule, bool) {
	if r.log.Disabled {
		return Rule{}, false
	}
	return Rule{Mark: mark, Target: Log, Log: render.Log{
		Prefix: verdictlog.Prefix(v, dir, policies), Group: r.log.Group, Rate: r.log.Rate, Burst: r.log.Burst,
	}}, true
}

type dispatchEntry struct {
	ip    netip.Addr
	chain string
	note  string
	// drop makes the leaf rule drop instead of jumping to chain.
	drop bool
}

// direction renders the group and policy chains of one direction and
// returns the dispatch entries of its pods.
func (r *renderer) direction(dir policy.Direction, groups []policy.Group, rules map[string]*policy.PolicyRules) []dispatchEntry {
	var entries []dispatchEntry
	for _, g := range groups {
		gc := &Chain{Name: groupChainName(dir, g.Policies)}
		// Packets conntrack cannot place are neither part of an allowed
		// connection nor a valid new one: dropped for isolated pods, left
		// alone for audit-only ones, which are not isolated.
		invalid, logged := Drop, policy.LogDropped
		if g.AuditOnly() {
			invalid, logged = Return, policy.LogAudited
		}
		gc.Rules = append(gc.Rules, Rule{CtState: "INVALID", Target: invalid}, Rule{Target: ClearMark})
		for _, key := range g.Policies {
			pc := r.policyChain(dir, key, rules[key])
			gc.Rules = append(gc.Rules, Rule{Comment: textutil.Truncate(key, maxComment), Target: Jump, Chain: pc})
			if l, ok := r.logRule(policy.LogAllowed, dir, []string{key}, MarkAny); ok {
				// The first policy that allows goes to its allow chain, which
				// logs, clears the mark and returns to our caller: the log
				// names that policy, and no later one logs again.
				ac := allowChainName(dir, key)
				r.chains[ac] = &Chain{Name: ac, Rules: []Rule{l, {Target: ClearMark}}}
				gc.Rules = append(gc.Rules, Rule{Mark: MarkSet, Target: Goto, Chain: ac})
			}
		}
		if l, ok := r.logRule(logged, dir, g.Policies, MarkUnset); ok {
			gc.Rules = append(gc.Rules, l)
		}
		if !g.AuditOnly() {
			gc.Rules = append(gc.Rules, Rule{Mark: MarkUnset, Target: Drop})
		}
		gc.Rules = append(gc.Rules, Rule{Target: ClearMark})
		r.chains[gc.Name] = gc
		note := g.Policies[0]
		if len(g.Policies) > 1 {
			note += fmt.Sprintf(" +%d", len(g.Policies)-1)
		}
		for _, ip := range g.IPs {
			if r.ours(ip) {
				entries = append(entries, dispatchEntry{ip: ip, chain: gc.Name, note: textutil.Truncate(note, maxComment)})
			}
		}
	}
	return entries
}

// policyChain renders (once) the chain of one policy in one direction. A
// policy missing from the state gets an empty chain: it allows nothing.
func (r *renderer) policyChain(dir policy.Direction, key string, pr *policy.PolicyRules) string {
	name := policyChainName(dir, key)
	if r.chains[name] != nil {
		return name
	}
	c := &Chain{Name: name, Rules: []Rule{{Mark: MarkSet, Target: Return}}}
	if pr != nil {
		list := pr.Ingress
		if dir == policy.Egress {
			list = pr.Egress
		}
		for _, rule := range list {
			c.Rules = append(c.Rules, r.policyRule(dir, rule)...)
		}
	}
	r.chains[name] = c
	return name
}

// policyRule renders one NetworkPolicy rule (Peers × Ports) for the family.
func (r *renderer) policyRule(dir policy.Direction, rule policy.Rule) []Rule {
	// allow is what a packet with matching ports does: set the mark, or,
	// when the peers are a list, jump to the peer chain that sets it for
	// matching remote addresses.
	allow := Rule{Target: SetMark}
	if !rule.Peers.All {
		peers := r.peerChain(dir, rule.Peers)
		if peers == "" {
			allow = Rule{}
		} else {
			allow = Rule{Target: Jump, Chain: peers}
		}
	}
	var out []Rule
	if allow.Target != 0 {
		if rule.Ports.All {
			out = append(out, allow)
		} else {
			out = append(out, portRules(rule.Ports.Ranges, allow)...)
		}
	}
	for _, n := range rule.Ports.Named {
		if !r.ours(n.IP) {
			continue
		}
		proto, ok := policy.ProtocolNumber(n.Protocol)
		if !ok {
			continue
		}
		nr := allow
		if dir == policy.Egress {
			// The model resolves egress named ports only on destinations
			// inside the peers, so the triple says it all.
			nr = Rule{Target: SetMark}
		} else if nr.Target == 0 {
			continue
		}
		nr.Dst = policy.AddrRange(n.IP)
		nr.Proto = proto
		nr.DPorts = []PortSpan{{n.Port, n.Port}}
		out = append(out, nr)
	}
	return out
}

// portRules matches numeric port ranges, one multiport rule per protocol
// and 15 ports.
func portRules(ranges []policy.PortRange, allow Rule) []Rule {
	var out []Rule
	var cur Rule
	used := 0
	flush := func() {
		if cur.Proto != 0 {
			out = append(out, cur)
		}
		cur, used = Rule{}, 0
	}
	for _, pr := range ranges {
		proto, ok := policy.ProtocolNumber(pr.Protocol)
		if !ok {
			continue
		}
		cost := 1
		if pr.First != pr.Last {
			cost = 2
		}
		if cur.Proto != proto || used+cost > maxMultiport {
			flush()
			cur = allow
			cur.Proto = proto
			cur.DPorts = nil
		}
		cur.DPorts = append(cur.DPorts, PortSpan{pr.First, pr.Last})
		used += cost
	}
	flush()
	return out
}

// peerChain renders (once) the chain that sets the mark for the peers'
// addresses of this family; "" when the family has none.
func (r *renderer) peerChain(dir policy.Direction, p policy.Peers) string {
	var ranges []policy.IPRange
	for _, rg := range p.Ranges {
		if rg.Is4() == (r.fam == IPv4) {
			ranges = append(ranges, rg)
		}
	}
	if len(ranges) == 0 {
		return ""
	}
	side := "SRC"
	if dir == policy.Egress {
		side = "DST"
	}
	id := p.ID
	if id == "" {
		// The model always sets an ID; without one, name by content.
		id = fmt.Sprint(ranges)
	}
	name := fmt.Sprintf("%s%s-%s", ChainPrefix, side, nameHash(id))
	if r.chains[name] != nil {
		return name
	}
	c := &Chain{Name: name}
	for _, rg := range ranges {
		rule := Rule{Target: SetMark}
		if dir == policy.Egress {
			rule.Dst = rg
		} else {
			rule.Src = rg
		}
		c.Rules = append(c.Rules, rule)
	}
	r.chains[name] = c
	return name
}

// dispatch fills the dispatch chain name: one rule per address up to
// dispatchLeaf addresses, otherwise a binary tree of sub-chains (named after
// base and their prefix) split on the first bit where the addresses differ.
func (r *renderer) dispatch(base, name string, byDst bool, entries []dispatchEntry) {
	slices.SortStableFunc(entries, func(a, b dispatchEntry) int { return a.ip.Compare(b.ip) })
	// An address is in one group per direction; should the state repeat
	// one, the first group wins (a tree split needs distinct addresses).
	entries = slices.CompactFunc(entries, func(a, b dispatchEntry) bool { return a.ip == b.ip })
	c := &Chain{Name: name}
	r.chains[name] = c
	if len(entries) <= dispatchLeaf {
		for _, e := range entries {
			rule := Rule{Comment: e.note, Target: Jump, Chain: e.chain}
			if e.drop {
				rule = Rule{Comment: e.note, Target: Drop}
			}
			if byDst {
				rule.Dst = policy.AddrRange(e.ip)
			} else {
				rule.Src = policy.AddrRange(e.ip)
			}
			c.Rules = append(c.Rules, rule)
		}
		return
	}
	bits := commonBits(entries[0].ip, entries[len(entries)-1].ip)
	split, _ := slices.BinarySearchFunc(entries, bits, func(e dispatchEntry, bits int) int {
		if bitAt(e.ip, bits) {
			return 1
		}
		return -1
	})
	for _, half := range [][]dispatchEntry{entries[:split], entries[split:]} {
		p := netip.PrefixFrom(half[0].ip, commonBits(half[0].ip, half[len(half)-1].ip)).Masked()
		sub := fmt.Sprintf("%s-%s", base, nameHash(p.String())[:8])
		rule := Rule{Target: Jump, Chain: sub}
		if byDst {
			rule.Dst = policy.PrefixRange(p)
		} else {
			rule.Src = policy.PrefixRange(p)
		}
		c.Rules = append(c.Rules, rule)
		r.dispatch(base, sub, byDst, half)
	}
}

func (r *renderer) ours(ip netip.Addr) bool { return ip.Is4() == (r.fam == IPv4) }

// commonBits is the length of the longest prefix a and b share.
func commonBits(a, b netip.Addr) int {
	n := 0
	for n < a.BitLen() && bitAt(a, n) == bitAt(b, n) {
		n++
	}
	return n
}

func bitAt(a netip.Addr, i int) bool {
	s := a.AsSlice()
	return s[i/8]&(0x80>>(i%8)) != 0
}

// Chain names are at most 28 bytes (the kernel's limit is 29 with the NUL):
// the prefix, a kind and 10 hex digits of a hash of what the chain stands
// for. Comments carry the readable names.
func groupChainName(dir policy.Direction, policies []string) string {
	kind := "IN"
	if dir == policy.Egress {
		kind = "EG"
	}
	return fmt.Sprintf("%s%s-%s", ChainPrefix, kind, nameHash(strings.Join(policies, "\x00")))
}

func policyChainName(dir policy.Direction, key string) string {
	kind := "PIN"
	if dir == policy.Egress {
		kind = "PEG"
	}
	return fmt.Sprintf("%s%s-%s", ChainPrefix, kind, nameHash(key))
}

// allowChainName names the chain that logs what a policy allows.
func allowChainName(dir policy.Direction, key string) string {
	kind := "AIN"
	if dir == policy.Egress {
		kind = "AEG"
	}
	return fmt.Sprintf("%s%s-%s", ChainPrefix, kind, nameHash(key))
}

// nameHash is 10 hex digits of the SHA-256 of s: unique enough to name a
// chain within the kernel's 28 bytes.
func nameHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:10]
}
