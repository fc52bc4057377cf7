package policy

import (
	"encoding/json"
	"fmt"
	"net/netip"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// This file resolves the peers of a rule (pod and namespace selectors,
// ipBlocks) to address ranges and, for named ports, to the pods behind them.

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
