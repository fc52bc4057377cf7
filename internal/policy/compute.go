package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Compute returns the state the node in.NodeName must enforce. It never
// fails: malformed policy parts match nothing and are listed in
// State.Errors.
func Compute(in Input) State {
	c := newComputer(in)
	st := State{NodeName: in.NodeName}

	type entry struct {
		np    *networkingv1.NetworkPolicy
		key   string
		audit bool
	}
	var policies []entry
	for _, np := range in.Policies {
		if np != nil {
			policies = append(policies, entry{np, policyKey(np), false})
		}
	}
	for _, np := range in.AuditPolicies {
		if np != nil {
			policies = append(policies, entry{np, AuditKey(np.Namespace, np.Name), true})
		}
	}
	slices.SortStableFunc(policies, func(a, b entry) int { return cmp.Compare(a.key, b.key) })

	ingressOf := map[*podRef][]string{}
	egressOf := map[*podRef][]string{}
	for _, e := range policies {
		np, key := e.np, e.key
		ingressIso, egressIso := policyTypes(np)
		if !ingressIso && !egressIso {
			continue
		}
		targets, selErr := c.selectTargets(np)
		if selErr != nil {
			st.Errors = append(st.Errors, PolicyError{Policy: key, Err: selErr})
		}
		if len(targets) == 0 {
			continue
		}
		pr := PolicyRules{Key: key, Audit: e.audit, IngressIsolating: ingressIso, EgressIsolating: egressIso}
		for _, t := range targets {
			if ingressIso {
				ingressOf[t] = append(ingressOf[t], key)
			}
			if egressIso {
				egressOf[t] = append(egressOf[t], key)
			}
		}
		// A policy with an invalid podSelector selects its whole namespace
		// and allows nothing (fail closed).
		if selErr == nil {
			var errs []error
			if ingressIso {
				for i, r := range np.Spec.Ingress {
					rule, rerrs := c.ingressRule(np, key, i, r, targets)
					pr.Ingress = append(pr.Ingress, rule)
					errs = append(errs, rerrs...)
				}
			}
			if egressIso {
				for i, r := range np.Spec.Egress {
					rule, rerrs := c.egressRule(np, key, i, r)
					pr.Egress = append(pr.Egress, rule)
					errs = append(errs, rerrs...)
				}
			}
			for _, err := range errs {
				st.Errors = append(st.Errors, PolicyError{Policy: key, Err: err})
			}
		}
		st.Policies = append(st.Policies, pr)
	}
	st.Ingress = buildGroups(ingressOf)
	st.Egress = buildGroups(egressOf)
	// An audit policy whose pods all have an enforce policy too is in no
	// group (see stripAudit): nothing refers to its rules.
	st.Policies = slices.DeleteFunc(st.Policies, func(pr PolicyRules) bool {
		return pr.Audit && !inGroups(st.Ingress, pr.Key) && !inGroups(st.Egress, pr.Key)
	})
	return st
}

type computer struct {
	in Input
	*podIndex
	selectors selectorCache
	// allAddrs are the addresses of every peer, built on first use (egress
	// named ports of rules open to every destination).
	allAddrs []addrPod
}

func newComputer(in Input) *computer {
	return &computer{in: in, podIndex: newPodIndex(in), selectors: selectorCache{}}
}

func policyKey(np *networkingv1.NetworkPolicy) string {
	if np == nil {
		return ""
	}
	return np.Namespace + "/" + np.Name
}

// policyTypes applies the API's defaulting: Ingress always, Egress when the
// policy has egress rules.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

func (c *computer) selectTargets(np *networkingv1.NetworkPolicy) ([]*podRef, error) {
	sel, err := c.selectors.convert(&np.Spec.PodSelector)
	var out []*podRef
	for _, p := range c.locals[np.Namespace] {
		if err != nil || sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	if err != nil {
		return out, fmt.Errorf("spec.podSelector: %w (selecting every pod of the namespace, allowing nothing)", err)
	}
	return out, nil
}

func (c *computer) ingressRule(np *networkingv1.NetworkPolicy, key string, i int, r networkingv1.NetworkPolicyIngressRule, targets []*podRef) (Rule, []error) {
	path := func() string { return fmt.Sprintf("spec.ingress[%d]", i) }
	ports, named, perrs := resolvePorts(func() string { return path() + ".ports" }, r.Ports)
	peers, _, errs := c.resolvePeers(np.Namespace, Ingress, func() string { return path() + ".from" }, r.From, false)
	errs = append(errs, perrs...)
	if len(named) > 0 {
		ports.NamedID = shortHash("named", key, string(Ingress), strconv.Itoa(i))
		ports.Named = resolveNamed(named, targetAddrs(targets))
	}
	return Rule{Peers: peers, Ports: ports}, errs
}

func (c *computer) egressRule(np *networkingv1.NetworkPolicy, key string, i int, r networkingv1.NetworkPolicyEgressRule) (Rule, []error) {
	path := func() string { return fmt.Sprintf("spec.egress[%d]", i) }
	ports, named, perrs := resolvePorts(func() string { return path() + ".ports" }, r.Ports)
	peers, dests, errs := c.resolvePeers(np.Namespace, Egress, func() string { return path() + ".to" }, r.To, len(named) > 0)
	errs = append(errs, perrs...)
	if len(named) > 0 {
		ports.NamedID = shortHash("named", key, string(Egress), strconv.Itoa(i))
		ports.Named = resolveNamed(named, dests)
	}
	return Rule{Peers: peers, Ports: ports}, errs
}

// addrPod is one address of a pod.
type addrPod struct {
	ip  netip.Addr
	pod *Pod
}

func targetAddrs(pods []*podRef) []addrPod {
	var out []addrPod
	for _, p := range pods {
		for _, ip := range p.ips {
			out = append(out, addrPod{ip, p.Pod})
		}
	}
	return out
}

// resolvePeers returns the peers of a from/to list and, when wantDests is
// set, the cluster pod addresses among them (the candidates for egress named
// ports). path is called only to name a malformed part.
func (c *computer) resolvePeers(ns string, dir Direction, path func() string, list []networkingv1.NetworkPolicyPeer, wantDests bool) (Peers, []addrPod, []error) {
	if len(list) == 0 {
		if !wantDests {
			return Peers{All: true}, nil, nil
		}
		if c.allAddrs == nil {
			c.allAddrs = targetAddrs(c.peers)
		}
		return Peers{All: true}, c.allAddrs, nil
	}
	raw, _ := json.Marshal(list)
	peers := Peers{ID: shortHash("peers", ns, string(dir), string(raw))}
	var ranges, blocks []IPRange
	var errs []error
	var pods []*podRef
	for i, p := range list {
		ppath := func() string { return fmt.Sprintf("%s[%d]", path(), i) }
		switch {
		case p.IPBlock != nil && (p.PodSelector != nil || p.NamespaceSelector != nil):
			errs = append(errs, fmt.Errorf("%s: ipBlock together with a selector (matching nothing)", ppath()))
		case p.IPBlock != nil:
			rs, err := ipBlockRanges(p.IPBlock)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.ipBlock: %w (matching nothing)", ppath(), err))
				continue
			}
			blocks = append(blocks, rs...)
		case p.PodSelector == nil && p.NamespaceSelector == nil:
			errs = append(errs, fmt.Errorf("%s: no podSelector, namespaceSelector or ipBlock (matching nothing)", ppath()))
		default:
			sel, err := c.selectPeerPods(ns, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w (matching nothing)", ppath(), err))
				continue
			}
			pods = append(pods, sel...)
		}
	}
	blocks = MergeRanges(blocks)
	for _, p := range pods {
		for _, ip := range p.ips {
			// Repeated addresses merge in MergeRanges.
			ranges = append(ranges, AddrRange(ip))
		}
	}
	peers.Ranges = MergeRanges(append(ranges, blocks...))
	if !wantDests {
		return peers, nil, errs
	}
	seen := map[netip.Addr]bool{}
	var dests []addrPod
	for _, p := range pods {
		for _, ip := range p.ips {
			if !seen[ip] {
				seen[ip] = true
				dests = append(dests, addrPod{ip, p.Pod})
			}
		}
	}
	// Cluster pods inside an ipBlock are destinations too, for named ports.
	if len(blocks) > 0 {
		for _, p := range c.peers {
			for _, ip := range p.ips {
				if !seen[ip] && rangesContain(blocks, ip) {
					seen[ip] = true
					dests = append(dests, addrPod{ip, p.Pod})
				}
			}
		}
	}
	return peers, dests, errs
}

func (c *computer) selectPeerPods(ns string, p networkingv1.NetworkPolicyPeer) ([]*podRef, error) {
	podSel := labels.Everything()
	if p.PodSelector != nil {
		s, err := c.selectors.convert(p.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("podSelector: %w", err)
		}
		podSel = s
	}
	var nsSel labels.Selector
	if p.NamespaceSelector != nil {
		s, err := c.selectors.convert(p.NamespaceSelector)
		if err != nil {
			return nil, fmt.Errorf("namespaceSelector: %w", err)
		}
		nsSel = s
	}
	return c.selectPeers(ns, nsSel, podSel), nil
}

func ipBlockRanges(b *networkingv1.IPBlock) ([]IPRange, error) {
	// No trimming: the API server rejects " 10.0.0.0/8", and a malformed
	// block must match nothing rather than be read leniently as an allow
	// (found by FuzzCompute).
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil, fmt.Errorf("cidr %q: %w", b.CIDR, err)
	}
	// An IPv4-mapped IPv6 prefix (::ffff:a.b.c.d/n) names IPv4 addresses in
	// IPv6 form: the kernel never matches IPv4 packets against it, other
	// implementations do. Ambiguous, so malformed (found by FuzzCompute).
	if cidr.Addr().Is4In6() {
		return nil, fmt.Errorf("cidr %q is an IPv4-mapped IPv6 prefix", b.CIDR)
	}
	var cut []IPRange
	for _, e := range b.Except {
		ep, err := netip.ParsePrefix(e)
		if err != nil {
			return nil, fmt.Errorf("except %q: %w", e, err)
		}
		if ep.Addr().Is4In6() {
			return nil, fmt.Errorf("except %q is an IPv4-mapped IPv6 prefix", e)
		}
		if ep.Addr().BitLen() != cidr.Addr().BitLen() {
			return nil, fmt.Errorf("except %q is not of the family of cidr %q", e, b.CIDR)
		}
		cut = append(cut, PrefixRange(ep))
	}
	return SubtractRanges([]IPRange{PrefixRange(cidr)}, cut), nil
}

func rangesContain(rs []IPRange, ip netip.Addr) bool {
	for _, r := range rs {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

type namedSpec struct {
	name  string
	proto corev1.Protocol
}

func resolvePorts(path func() string, list []networkingv1.NetworkPolicyPort) (Ports, []namedSpec, []error) {
	if len(list) == 0 {
		return Ports{All: true}, nil, nil
	}
	var out Ports
	var named []namedSpec
	var errs []error
	for i, p := range list {
		ppath := func() string { return fmt.Sprintf("%s[%d]", path(), i) }
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if _, ok := ProtocolNumber(proto); !ok {
			errs = append(errs, fmt.Errorf("%s.protocol: unsupported %q (matching nothing)", ppath(), proto))
			continue
		}
		switch {
		case p.Port == nil:
			out.Ranges = append(out.Ranges, PortRange{Protocol: proto, First: 0, Last: 65535})
		case p.Port.Type == intstr.String:
			if p.EndPort != nil {
				errs = append(errs, fmt.Errorf("%s.endPort: not allowed with a named port (matching nothing)", ppath()))
				continue
			}
			named = append(named, namedSpec{name: p.Port.StrVal, proto: proto})
		default:
			first, last := p.Port.IntVal, p.Port.IntVal
			if p.EndPort != nil {
				last = *p.EndPort
			}
			if first < 1 || first > 65535 || last < first || last > 65535 {
				errs = append(errs, fmt.Errorf("%s: invalid port range %d-%d (matching nothing)", ppath(), first, last))
				continue
			}
			out.Ranges = append(out.Ranges, PortRange{Protocol: proto, First: uint16(first), Last: uint16(last)})
		}
	}
	out.Ranges = mergePortRanges(out.Ranges)
	return out, named, errs
}

func mergePortRanges(in []PortRange) []PortRange {
	if len(in) == 0 {
		return nil
	}
	slices.SortFunc(in, func(a, b PortRange) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.First, b.First), cmp.Compare(a.Last, b.Last))
	})
	out := in[:1]
	for _, r := range in[1:] {
		last := &out[len(out)-1]
		if r.Protocol == last.Protocol && int(r.First) <= int(last.Last)+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// resolveNamed resolves named ports against the container ports of the pods
// behind addrs.
func resolveNamed(named []namedSpec, addrs []addrPod) []NamedPort {
	set := map[NamedPort]bool{}
	for _, a := range addrs {
		for _, cp := range a.pod.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if cp.Name == "" || cp.Port < 1 || cp.Port > 65535 {
				continue
			}
			for _, n := range named {
				if n.name == cp.Name && n.proto == proto {
					set[NamedPort{IP: a.ip, Protocol: proto, Port: uint16(cp.Port)}] = true
				}
			}
		}
	}
	out := make([]NamedPort, 0, len(set))
	for np := range set {
		out = append(out, np)
	}
	slices.SortFunc(out, compareNamed)
	return out
}

func compareNamed(a, b NamedPort) int {
	return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

// inGroups tells whether a policy key is in one of the groups.
func inGroups(groups []Group, key string) bool {
	for _, g := range groups {
		if _, ok := slices.BinarySearch(g.Policies, key); ok {
			return true
		}
	}
	return false
}

// stripAudit removes audit keys from a pod's policy list when it has an
// enforce policy: such a pod is enforced by its enforce policies alone, and
// what its audit policies would add changes no verdict (the audit intent is
// narrower or wider than what is in force, and what is in force decides).
func stripAudit(pols []string) []string {
	if !slices.ContainsFunc(pols, func(k string) bool { return !IsAuditKey(k) }) {
		return pols
	}
	return slices.DeleteFunc(pols, IsAuditKey)
}

func buildGroups(of map[*podRef][]string) []Group {
	byKey := map[string]*Group{}
	for pod, pols := range of {
		pols = stripAudit(pols)
		slices.Sort(pols)
		pols = slices.Compact(pols)
		k := strings.Join(pols, "\x00")
		g := byKey[k]
		if g == nil {
			g = &Group{Policies: pols}
			byKey[k] = g
		}
		g.Pods = append(g.Pods, pod.Namespace+"/"+pod.Name)
		g.IPs = append(g.IPs, pod.ips...)
	}
	out := make([]Group, 0, len(byKey))
	for _, g := range byKey {
		slices.Sort(g.Pods)
		slices.SortFunc(g.IPs, netip.Addr.Compare)
		g.IPs = slices.Compact(g.IPs)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int { return slices.Compare(a.Policies, b.Policies) })
	// Two pods can briefly share an IP (a deleted pod's address reused). An
	// address dispatches to one group only: the first one keeps it.
	claimed := map[netip.Addr]bool{}
	for i := range out {
		out[i].IPs = slices.DeleteFunc(out[i].IPs, func(ip netip.Addr) bool {
			dup := claimed[ip]
			claimed[ip] = true
			return dup
		})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
