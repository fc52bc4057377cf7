package render

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/palisade-dev/palisade/internal/policy"
)

// This file builds the sets and maps a ruleset refers to: dispatch maps,
// policed pods, peers, ports and named ports.

// dispatchSets adds the dispatch maps (filled by groupChains) and the sets
// of policed pods.
func (r *renderer) dispatchSets(st *policy.State) {
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
}

// peerSet is the address set of one family of a rule's peers.
func (r *renderer) peerSet(fam Family, p policy.Peers) string {
	return r.familySet("peer", fam, p.ID, SetAddr4, SetAddr6, func(s *Set) {
		for _, rg := range p.Ranges {
			if rg.Is4() == (fam == Family4) {
				s.Elements = append(s.Elements, Element{Addr: rg.First, AddrLast: rg.Last})
			}
		}
	})
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

// namedSet is the address, protocol and port set of one family of a rule's
// named ports.
func (r *renderer) namedSet(fam Family, p policy.Ports) string {
	return r.familySet("named", fam, p.NamedID, SetAddr4ProtoPort, SetAddr6ProtoPort, func(s *Set) {
		for _, n := range p.Named {
			if n.IP.Is4() == (fam == Family4) {
				proto, _ := policy.ProtocolNumber(n.Protocol)
				s.Elements = append(s.Elements, Element{Addr: n.IP, Proto: proto, Port: n.Port})
			}
		}
	})
}

// familySet names the set of one family for a model ID and, the first time,
// creates it with the family's kind and the elements fill adds.
func (r *renderer) familySet(prefix string, fam Family, id string, kind4, kind6 SetKind, fill func(*Set)) string {
	name := prefix + strconv.Itoa(int(fam)) + "-" + idTag(id)
	if r.sets[name] != nil {
		return name
	}
	s := &Set{Name: name, Kind: kind4}
	if fam == Family6 {
		s.Kind = kind6
	}
	fill(s)
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
