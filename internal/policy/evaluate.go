package policy

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Packet is the first packet of a connection as policy sees it.
type Packet struct {
	Src, Dst netip.Addr
	Protocol corev1.Protocol
	// Port is the destination port (0 for protocols without ports).
	Port uint16
}

// Allows tells whether the state lets a new connection through this node:
// it must pass the egress groups of a local source and the ingress groups of
// a local destination. Audit-only groups accept everything. It is the
// reference meaning of the model; backends' tracer tests compare their
// rendered rulesets against it.
func (s *State) Allows(p Packet) bool {
	return s.allowsDir(Egress, p) && s.allowsDir(Ingress, p)
}

// allowsDir: a pod in no group of the direction is not isolated; an
// isolated one lets through what its decision does not drop (audit-only
// groups never drop).
func (s *State) allowsDir(dir Direction, p Packet) bool {
	d, isolated := s.decideDir(dir, p)
	return !isolated || d.Verdict != LogDropped
}

func (s *State) policy(key string) *PolicyRules {
	i, ok := slices.BinarySearchFunc(s.Policies, key, func(pr PolicyRules, k string) int {
		switch {
		case pr.Key < k:
			return -1
		case pr.Key > k:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	return &s.Policies[i]
}

func (r Rule) matches(remote netip.Addr, p Packet) bool {
	if !r.Peers.All && !rangesContain(r.Peers.Ranges, remote) {
		return false
	}
	if r.Ports.AllowsNumbered(p.Protocol, p.Port) {
		return true
	}
	return slices.Contains(r.Ports.Named, NamedPort{IP: p.Dst, Protocol: p.Protocol, Port: p.Port})
}
