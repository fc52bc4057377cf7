package observe

import (
	"math"
	"net/netip"
	"slices"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/internal/policy"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

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
	// ports and namedProtocols are the caller's ports as the policy model
	// reads them.
	ports          policy.Ports
	namedProtocols []corev1.Protocol
	// ok is false for callers that grant nothing: unresolved, or with a
	// selector that does not parse.
	ok bool
}

func newMatcher(in Input) *matcher {
	m := &matcher{namespaces: in.NamespaceLabels}
	for _, c := range in.Callers {
		cc := compiledCaller{c: c, ok: c.Resolved}
		cc.ports, cc.namedProtocols = policy.RulePorts(compiler.PolicyPorts(c.Ports))
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
		if cc.ok && m.source(cc, f.Source) && cc.portAllowed(f.Port, f.Protocol) {
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
		return !isPod(src) && inBlock(c.IPBlock, src.IP)
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

// inBlock tells whether the flow's address is in the block, as the
// policy model reads the block; an IPv4-mapped IPv6 address counts as its
// IPv4 address.
func inBlock(block *networkingv1.IPBlock, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && policy.IPBlockContains(block, addr.Unmap())
}

// portAllowed tells whether the caller's ports (all when none) cover the
// flow's port and protocol; numbers are read as the policy model reads the
// compiled policy's ports. A named port matches by protocol only: its
// number is in the destination pod's container spec, which the report does
// not carry, and the named port may stand for different numbers on
// different pods. So a flow to another port of the same protocol counts as
// this caller's; the node's verdict (Allowed) already said it was let in.
func (cc *compiledCaller) portAllowed(port int32, protocol v1alpha1.Protocol) bool {
	proto := corev1.Protocol(protocol)
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	if slices.Contains(cc.namedProtocols, proto) {
		return true
	}
	return port >= 0 && port <= math.MaxUint16 && cc.ports.AllowsNumbered(proto, uint16(port))
}

func itoa32(n int32) string { return strconv.FormatInt(int64(n), 10) }
