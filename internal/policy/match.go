package policy

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// IPBlockContains tells whether the block holds addr: in its CIDR and in
// none of its exceptions. A malformed block holds nothing, as in Compute.
func IPBlockContains(b *networkingv1.IPBlock, addr netip.Addr) bool {
	rs, err := ipBlockRanges(b)
	return err == nil && rangesContain(rs, addr)
}

// RulePorts reads a rule's port list as Compute does: numeric ranges merged
// by protocol (All when the list is empty), and the protocols of its named
// ports, whose numbers only the destination pods' container specs hold.
// Malformed entries match nothing.
func RulePorts(list []networkingv1.NetworkPolicyPort) (ports Ports, namedProtocols []corev1.Protocol) {
	ports, named, _ := resolvePorts(func() string { return "ports" }, list)
	for _, n := range named {
		namedProtocols = append(namedProtocols, n.proto)
	}
	return ports, namedProtocols
}

// AllowsNumbered tells whether the ports let a connection to port over
// protocol through by number: All, or one of the Ranges. Named ports are
// the caller's to check.
func (p Ports) AllowsNumbered(protocol corev1.Protocol, port uint16) bool {
	if p.All {
		return true
	}
	for _, pr := range p.Ranges {
		if pr.Protocol == protocol && pr.First <= port && port <= pr.Last {
			return true
		}
	}
	return false
}
