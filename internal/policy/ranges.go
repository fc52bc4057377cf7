package policy

import (
	"net/netip"
	"slices"
)

// IPRange is an inclusive range of addresses of one family.
type IPRange struct {
	First netip.Addr
	Last  netip.Addr
}

// Is4 tells whether the range is IPv4.
func (r IPRange) Is4() bool { return r.First.Is4() }

// Contains tells whether a is in the range.
func (r IPRange) Contains(a netip.Addr) bool {
	return a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

func (r IPRange) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// PrefixRange returns the range a prefix covers.
func PrefixRange(p netip.Prefix) IPRange {
	p = p.Masked()
	return IPRange{First: p.Addr(), Last: lastAddr(p)}
}

// AddrRange returns the range holding one address.
func AddrRange(a netip.Addr) IPRange { return IPRange{First: a, Last: a} }

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= bits {
				b[i] |= 0x80 >> bit
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// MergeRanges sorts ranges (IPv4 first) and merges overlapping and adjacent
// ones. The input is not modified.
func MergeRanges(in []IPRange) []IPRange {
	if len(in) == 0 {
		return nil
	}
	rs := slices.Clone(in)
	slices.SortFunc(rs, func(a, b IPRange) int {
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		return a.Last.Compare(b.Last)
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if last.First.BitLen() == r.First.BitLen() {
			next := last.Last.Next()
			if r.First.Compare(last.Last) <= 0 || (next.IsValid() && next == r.First) {
				if r.Last.Compare(last.Last) > 0 {
					last.Last = r.Last
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// SubtractRanges returns from minus cut, merged and sorted.
func SubtractRanges(from, cut []IPRange) []IPRange {
	cur := MergeRanges(from)
	for _, c := range MergeRanges(cut) {
		var next []IPRange
		for _, r := range cur {
			if r.First.BitLen() != c.First.BitLen() || c.Last.Compare(r.First) < 0 || r.Last.Compare(c.First) < 0 {
				next = append(next, r)
				continue
			}
			if r.First.Compare(c.First) < 0 {
				next = append(next, IPRange{First: r.First, Last: c.First.Prev()})
			}
			if c.Last.Compare(r.Last) < 0 {
				next = append(next, IPRange{First: c.Last.Next(), Last: r.Last})
			}
		}
		cur = next
	}
	return cur
}

// Prefixes splits the range into the fewest CIDR prefixes that cover it
// exactly (for backends without range matching).
func (r IPRange) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	cur := r.First
	for {
		bits := cur.BitLen()
		// Grow the prefix while it stays aligned and inside the range.
		size := bits
		for size > 0 {
			p := netip.PrefixFrom(cur, size-1)
			if p.Masked().Addr() != cur || lastAddr(p).Compare(r.Last) > 0 {
				break
			}
			size--
		}
		p := netip.PrefixFrom(cur, size)
		out = append(out, p)
		end := lastAddr(p)
		if end.Compare(r.Last) >= 0 {
			return out
		}
		cur = end.Next()
	}
}
