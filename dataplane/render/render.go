package render

import (
	"cmp"
	"slices"

	"github.com/palisade-dev/palisade/dataplane/verdictlog"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Render returns the ruleset that enforces st, logging verdicts as opts
// say (by default with the default group, rate and burst). Equal states and
// options give deeply equal rulesets.
func Render(st *policy.State, opts ...Option) *Ruleset {
	o := Resolve(opts...)
	r := &renderer{sets: map[string]*Set{}, log: o.Log, chainNames: map[dirKey]string{}}
	r.chains = hookChains()
	r.dispatchSets(st)
	used := r.groupChains(st)
	r.policyChains(st, used)
	return r.ruleset(o.Table, len(baseChains()))
}

// hookChains are the base chains with their rules: the established accept,
// the mid-stream drops and the dispatch to the group chains.
func hookChains() []Chain {
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
	return []Chain{egressChain, ingressChain, inputChain, outputChain}
}

// groupChains renders one chain per group and direction, dispatches the
// group's pods to it, and returns the policy chains the groups jump to.
func (r *renderer) groupChains(st *policy.State) map[dirKey]bool {
	used := map[dirKey]bool{}
	for _, dir := range []policy.Direction{policy.Ingress, policy.Egress} {
		groups, m4, m6 := st.Ingress, MapIngress4, MapIngress6
		if dir == policy.Egress {
			groups, m4, m6 = st.Egress, MapEgress4, MapEgress6
		}
		for _, g := range groups {
			gc := r.groupChain(dir, g, used)
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
	return used
}

// groupChain jumps to the chain of each policy of g, then logs and drops
// (or, for audit-only groups, accepts) what none of them allowed.
func (r *renderer) groupChain(dir policy.Direction, g policy.Group, used map[dirKey]bool) Chain {
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
		used[dirKey{dir, key}] = true
	}
	if l, ok := r.logAction(logged, dir, g.Policies); ok {
		gc.Rules = append(gc.Rules, Rule{Log: l})
	}
	gc.Rules = append(gc.Rules, Rule{Verdict: final})
	return gc
}

// policyChains renders the chain of each policy and direction a group jumps
// to, with its allow chain when allowed connections are logged.
func (r *renderer) policyChains(st *policy.State, used map[dirKey]bool) {
	for _, pr := range st.Policies {
		for _, dir := range []policy.Direction{policy.Ingress, policy.Egress} {
			if !used[dirKey{dir, pr.Key}] {
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
				r.chains = append(r.chains, allowChain(&pc, l))
			}
			r.chains = append(r.chains, pc)
		}
	}
}

// allowChain logs and accepts; pc's accepting rules jump to it instead.
// The log rule carries no verdict, so a packet over the rate limit skips the
// log and is accepted all the same (a limit in the accepting rule itself
// would make such a packet fall through to the group's drop). The allow
// chain is named after the policy chain.
func allowChain(pc *Chain, l Log) Chain {
	ac := Chain{Name: "a" + pc.Name, Rules: []Rule{{Log: l}, {Verdict: Accept}}}
	for i := range pc.Rules {
		if pc.Rules[i].Verdict == Accept {
			pc.Rules[i].Verdict, pc.Rules[i].Target = Jump, ac.Name
		}
	}
	return ac
}

// ruleset sorts the regular chains (those after the first nBase) and the
// sets by name.
func (r *renderer) ruleset(table string, nBase int) *Ruleset {
	rs := &Ruleset{Table: table}
	regular := r.chains[nBase:]
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

// logAction is the log statement for a decision, unless logging is off.
func (r *renderer) logAction(v policy.LogVerdict, dir policy.Direction, policies []string) (Log, bool) {
	if r.log.Disabled {
		return Log{}, false
	}
	return Log{Prefix: verdictlog.Prefix(v, dir, policies), Group: r.log.Group, Rate: r.log.Rate, Burst: r.log.Burst}, true
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
