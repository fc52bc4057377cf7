package observe

import (
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// matcher tells which declared caller, if any, allows a flow's source and
// port. Selectors are parsed once per computation.
type matcher struct {
	callers    []compiledCaller
	namespaces map[string]labels.Set
}

type compiledCaller struct {
	c compiler.Caller
	// pods and namespaces are the parsed selectors; nil pods selects all
	// pods, nil namespaces means the caller's own Namespace.
	pods, namespaces labels.Selector
	// ok is false for callers that grant nothing: unresolved, or with a
	// selector that does not parse.
	ok bool
}

func newMatcher(in Input) *matcher {
	m := &matcher{namespaces: in.NamespaceLabels}
	for _, c := range in.Callers {
		cc := compiledCaller{c: c, ok: c.Resolved}
		var err error
		if c.PodSelector != nil {
			if cc.pods, err = metav1.LabelSelectorAsSelector(c.PodSelector); err != nil {
				cc.ok = false
			}
		}
		if c.NamespaceSelector != nil {
			if cc.namespaces, err = metav1.LabelSelectorAsSelector(c.NamespaceSelector); err != nil {
				cc.ok = false
			}
		}
		m.callers = append(m.callers, cc)
	}
	return m
}

// firstCaller returns the index of the first caller that allows the flow's
// source to reach its port, or -1.
func (m *matcher) firstCaller(f *v1alpha1.FlowRecord) int {
	for i := range m.callers {
		cc := &m.callers[i]
		if cc.ok && m.source(cc, f.Source) && portAllowed(cc.c.Ports, f.Port, f.Protocol) {
			return i
		}
	}
	return -1
}

// source tells whether the caller's peer covers the endpoint: pods by
// namespace and labels, addresses by ipBlock. An ipBlock caller matches
// only non-pod sources, as the compiled policies intend it for peers
// outside the cluster (NetworkPolicy leaves ipBlock on pod IPs to the
// implementation).
func (m *matcher) source(cc *compiledCaller, src v1alpha1.FlowEndpoint) bool {
	c := &cc.c
	if c.IPBlock != nil {
		return !isPod(src) && inBlock(c.IPBlock.CIDR, c.IPBlock.Except, src.IP)
	}
	if !isPod(src) {
		return false
	}
	switch {
	case cc.namespaces != nil:
		nsLabels, known := m.namespaces[src.Namespace]
		if !known || !cc.namespaces.Matches(nsLabels) {
			return false
		}
	case c.Namespace != src.Namespace:
		return false
	}
	// The report's labels omit per-pod ones (pod-template-hash and the like),
	// which caller selectors do not use.
	return cc.pods == nil || cc.pods.Matches(labels.Set(src.Labels))
}

func inBlock(cidr string, except []string, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	in := func(c string) bool {
		p, err := netip.ParsePrefix(c)
		return err == nil && p.Contains(addr)
	}
	if !in(cidr) {
		return false
	}
	for _, e := range except {
		if in(e) {
			return false
		}
	}
	return true
}

// portAllowed tells whether one of the caller's ports (all when none)
// covers the flow's port and protocol. A named port matches by protocol
// only: its number is in the destination pod's container spec, which the
// report does not carry, and the named port may stand for different numbers
// on different pods. So a flow to another port of the same protocol counts
// as this caller's; the node's verdict (Allowed) already said it was let in.
func portAllowed(ports []compiler.Port, port int32, protocol v1alpha1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	if protocol == "" {
		protocol = v1alpha1.Protocol(corev1.ProtocolTCP)
	}
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if string(proto) != string(protocol) {
			continue
		}
		if p.Port.Type == intstr.String {
			return true
		}
		end := p.Port.IntVal
		if p.EndPort != nil {
			end = *p.EndPort
		}
		if port >= p.Port.IntVal && port <= end {
			return true
		}
	}
	return false
}

func itoa32(n int32) string { return strconv.FormatInt(int64(n), 10) }
