package policy

import (
	"cmp"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// This file indexes the pods of one Compute so that a selector visits only
// the pods that can match it, instead of every pod of the cluster for every
// peer of every policy (O(policies × pods), the cost docs/benchmarks.md
// measured at 10k pods). Every lookup returns pods in input order and is
// filtered with the selector itself, so results are exactly those of a full
// scan; the index only narrows where to look.

// podRef is a pod that can be a peer, with its addresses validated and
// unmapped once.
type podRef struct {
	*Pod
	// idx is the pod's position among the peers (input order).
	idx int
	ips []netip.Addr
}

type podIndex struct {
	peers []*podRef
	// namespaces holds the peers of each namespace; order lists the
	// namespaces in first-seen order.
	namespaces map[string]*nsPods
	order      []string
	// locals are this node's peers per namespace.
	locals   map[string][]*podRef
	nsLabels map[string]labels.Set
	// nsSelected caches, per namespace selector (by its canonical string),
	// the namespaces of peers it matches.
	nsSelected map[string]nsSelection
}

// nsPods are the peers of one namespace, with the subsets selectors asked
// for by label.
type nsPods struct {
	pods    []*podRef
	byLabel map[[2]string][]*podRef
}

type nsSelection struct {
	match map[string]bool
	names []string
	// pods are the peers of the matched namespaces in input order, built on
	// first use.
	pods []*podRef
}

func newPodIndex(in Input) *podIndex {
	x := &podIndex{
		namespaces: map[string]*nsPods{},
		locals:     map[string][]*podRef{},
		nsLabels:   make(map[string]labels.Set, len(in.Namespaces)),
		nsSelected: map[string]nsSelection{},
	}
	for _, ns := range in.Namespaces {
		x.nsLabels[ns.Name] = labels.Set(ns.Labels)
	}
	refs := make([]podRef, 0, len(in.Pods))
	x.peers = make([]*podRef, 0, len(in.Pods))
	for i := range in.Pods {
		p := &in.Pods[i]
		if p.HostNetwork || p.Finished {
			continue
		}
		ips := validIPs(p.IPs)
		if len(ips) == 0 {
			continue
		}
		refs = append(refs, podRef{Pod: p, idx: len(refs), ips: ips})
		r := &refs[len(refs)-1]
		x.peers = append(x.peers, r)
		nsp := x.namespaces[p.Namespace]
		if nsp == nil {
			nsp = &nsPods{}
			x.namespaces[p.Namespace] = nsp
			x.order = append(x.order, p.Namespace)
		}
		nsp.pods = append(nsp.pods, r)
		if p.NodeName == in.NodeName && in.NodeName != "" {
			x.locals[p.Namespace] = append(x.locals[p.Namespace], r)
		}
	}
	return x
}

// withLabel returns the namespace's peers that carry key=value, in input
// order (memoized: policies ask for the same few labels over and over).
func (n *nsPods) withLabel(key, value string) []*podRef {
	k := [2]string{key, value}
	if l, ok := n.byLabel[k]; ok {
		return l
	}
	var l []*podRef
	for _, p := range n.pods {
		if v, ok := p.Labels[key]; ok && v == value {
			l = append(l, p)
		}
	}
	if n.byLabel == nil {
		n.byLabel = map[[2]string][]*podRef{}
	}
	n.byLabel[k] = l
	return l
}

// selectPeers returns the peers in namespace ns (nsSel nil) or in the
// namespaces nsSel matches, whose labels podSel matches, in input order.
func (x *podIndex) selectPeers(ns string, nsSel, podSel labels.Selector) []*podRef {
	var names []string
	inNS := func(p *podRef) bool { return p.Namespace == ns }
	if nsSel == nil {
		names = []string{ns}
	} else {
		sel := x.namespaceSelection(nsSel)
		names = sel.names
		inNS = func(p *podRef) bool { return sel.match[p.Namespace] }
	}
	cand, sorted := x.candidates(names, podSel)
	if cand == nil {
		if nsSel == nil {
			if n := x.namespaces[ns]; n != nil {
				cand = n.pods
			}
		} else {
			cand = x.namespacePods(nsSel)
		}
		sorted = true
	}
	var out []*podRef
	for _, p := range cand {
		if inNS(p) && podSel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	if !sorted {
		slices.SortFunc(out, func(a, b *podRef) int { return cmp.Compare(a.idx, b.idx) })
	}
	return out
}

// candidates returns a superset of the peers of the named namespaces that
// podSel matches, from the label index: the pods carrying one of the values
// of the most selective equality or set-membership requirement. It returns
// nil when podSel has no such requirement, and whether the result is in
// input order.
func (x *podIndex) candidates(names []string, podSel labels.Selector) ([]*podRef, bool) {
	reqs, ok := podSel.Requirements()
	if !ok {
		return nil, false
	}
	var best []*podRef
	found, sorted := false, false
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
		default:
			continue
		}
		values := r.Values().UnsortedList()
		var c []*podRef
		parts := 0
		for _, ns := range names {
			n := x.namespaces[ns]
			if n == nil {
				continue
			}
			for _, v := range values {
				if l := n.withLabel(r.Key(), v); len(l) > 0 {
					c = append(c, l...)
					parts++
				}
			}
		}
		if !found || len(c) < len(best) {
			best, found, sorted = c, true, parts <= 1
		}
	}
	if !found {
		return nil, false
	}
	if best == nil {
		best = []*podRef{}
	}
	return best, sorted
}

// namespaceSelection returns which namespaces of peers a namespace selector
// matches. A namespace missing from Input.Namespaces has no labels (it
// matches an empty selector).
func (x *podIndex) namespaceSelection(nsSel labels.Selector) nsSelection {
	key := nsSel.String()
	if s, ok := x.nsSelected[key]; ok {
		return s
	}
	s := nsSelection{match: map[string]bool{}}
	for _, ns := range x.order {
		if nsSel.Matches(x.nsLabels[ns]) {
			s.match[ns] = true
			s.names = append(s.names, ns)
		}
	}
	x.nsSelected[key] = s
	return s
}

// namespacePods returns the peers of the namespaces nsSel matches, in input
// order.
func (x *podIndex) namespacePods(nsSel labels.Selector) []*podRef {
	key := nsSel.String()
	s := x.namespaceSelection(nsSel)
	if s.pods == nil {
		s.pods = []*podRef{}
		for _, ns := range s.names {
			s.pods = append(s.pods, x.namespaces[ns].pods...)
		}
		slices.SortFunc(s.pods, func(a, b *podRef) int { return cmp.Compare(a.idx, b.idx) })
		x.nsSelected[key] = s
	}
	return s.pods
}

func validIPs(ips []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if ip.IsValid() {
			out = append(out, ip.Unmap())
		}
	}
	return out
}
