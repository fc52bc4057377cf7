package nft

import (
	"github.com/google/nftables"
)

// This file splits set elements over several netlink messages of the same
// transaction. google/nftables puts all the elements of one call in one
// nested attribute (NFTA_SET_ELEM_LIST_ELEMENTS), whose length field is 16
// bits, and mdlayher/netlink does not check it: past 64 KiB (about 1,600
// IPv4 ranges) the length silently wraps and the kernel parses a truncated
// list plus garbage. Depending on the bytes, a set then holds fewer elements
// than sent without any error, or the batch fails with EEXIST, ENOBUFS or
// EINVAL (seen when growing a peer set from 2k to 4k elements).

// maxElementListBytes bounds the encoded element list of one message, well
// under the 64 KiB an attribute can hold.
const maxElementListBytes = 32 << 10

// elementChunks splits es into runs whose encoded list stays under
// maxElementListBytes. An interval end stays in the same run as the start
// before it (not needed by the kernel, but it keeps each range whole in
// one message).
func elementChunks(es []nftables.SetElement) [][]nftables.SetElement {
	var out [][]nftables.SetElement
	start, size := 0, 0
	for i := range es {
		n := elementBytes(&es[i])
		if size+n > maxElementListBytes && i > start && !es[i].IntervalEnd {
			out = append(out, es[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(es) {
		out = append(out, es[start:])
	}
	return out
}

// elementListBytes is the encoded size of a list of elements.
func elementListBytes(es []nftables.SetElement) int {
	n := 0
	for i := range es {
		n += elementBytes(&es[i])
	}
	return n
}

// elementBytes is the encoded size of one element as google/nftables
// marshals it (attribute headers of 4 bytes, data padded to 4), rounded up
// where the library may add attributes this backend does not use.
func elementBytes(e *nftables.SetElement) int {
	const hdr = 4
	n := hdr // the element's own nest
	if e.IntervalEnd {
		n += hdr + 4 // flags
	}
	n += hdr + hdr + align4(len(e.Key)) // key nest and value
	if len(e.KeyEnd) > 0 {
		n += hdr + hdr + align4(len(e.KeyEnd))
	}
	if e.VerdictData != nil {
		// data nest, verdict nest, verdict code, chain name
		n += hdr + hdr + hdr + 4 + hdr + align4(len(e.VerdictData.Chain)+1)
	}
	if len(e.Val) > 0 {
		n += hdr + hdr + align4(len(e.Val))
	}
	return n + 16 // slack for timeouts, comments and future attributes
}

func align4(n int) int { return (n + 3) &^ 3 }

// addElements and deleteElements send es in as many messages as
// elementChunks makes of them; they all belong to the caller's batch.
func addElements(conn *nftables.Conn, s *nftables.Set, es []nftables.SetElement) error {
	for _, part := range elementChunks(es) {
		if err := conn.SetAddElements(s, part); err != nil {
			return err
		}
	}
	return nil
}

func deleteElements(conn *nftables.Conn, s *nftables.Set, es []nftables.SetElement) error {
	for _, part := range elementChunks(es) {
		if err := conn.SetDeleteElements(s, part); err != nil {
			return err
		}
	}
	return nil
}
