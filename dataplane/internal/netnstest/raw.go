package netnstest

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"net/netip"

	"golang.org/x/sys/unix"
)

// TCP flags for RawTCP.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPAck = 0x10
)

// RawTCP sends one hand-made TCP segment with the given flags from `from`
// (whose address src is) to dst:port and tells whether it arrived in `to`
// within ProbeTimeout. It shows what netfilter does with segments that no
// socket would send, such as those conntrack calls invalid.
func RawTCP(from, to *NS, src, dst netip.Addr, port int, flags byte) (bool, error) {
	sport := uint16(20000 + rand.IntN(20000))
	seq := rand.Uint32()
	seg := make([]byte, 20)
	binary.BigEndian.PutUint16(seg[0:], sport)
	binary.BigEndian.PutUint16(seg[2:], uint16(port))
	binary.BigEndian.PutUint32(seg[4:], seq)
	if flags&TCPAck != 0 {
		binary.BigEndian.PutUint32(seg[8:], rand.Uint32())
	}
	seg[12] = 5 << 4 // data offset: 5 words
	seg[13] = flags
	binary.BigEndian.PutUint16(seg[14:], 64240)
	binary.BigEndian.PutUint16(seg[16:], inetChecksum(src, dst, unix.IPPROTO_TCP, seg))
	match := func(l4 []byte) bool {
		return len(l4) >= 20 && binary.BigEndian.Uint16(l4[0:]) == sport &&
			binary.BigEndian.Uint16(l4[2:]) == uint16(port) && binary.BigEndian.Uint32(l4[4:]) == seq
	}
	return rawReach(from, to, src, dst, unix.IPPROTO_TCP, seg, match)
}

// reachSCTP sends an SCTP INIT chunk and watches for it in the destination.
func reachSCTP(p Probe) (bool, error) {
	if p.To == nil {
		return false, errors.New("sctp probe needs the destination namespace")
	}
	sport := uint16(20000 + rand.IntN(20000))
	tag := rand.Uint32() | 1 // the initiate tag must not be 0
	pkt := make([]byte, 32)
	binary.BigEndian.PutUint16(pkt[0:], sport)
	binary.BigEndian.PutUint16(pkt[2:], uint16(p.Port))
	// pkt[4:8]: verification tag 0, as an INIT must carry.
	pkt[12] = 1 // chunk type INIT
	binary.BigEndian.PutUint16(pkt[14:], 20)
	binary.BigEndian.PutUint32(pkt[16:], tag)
	binary.BigEndian.PutUint32(pkt[20:], 65536) // a_rwnd
	binary.BigEndian.PutUint16(pkt[24:], 1)     // outbound streams
	binary.BigEndian.PutUint16(pkt[26:], 1)     // inbound streams
	binary.BigEndian.PutUint32(pkt[28:], rand.Uint32())
	// RFC 9260 appendix A: CRC32c, stored in the byte order the kernel
	// computes it in (little endian on the wire value of ~crc). Conntrack
	// marks a bad checksum invalid, so an allowed probe proves it right.
	binary.LittleEndian.PutUint32(pkt[8:], crc32.Checksum(pkt, crc32.MakeTable(crc32.Castagnoli)))
	match := func(l4 []byte) bool {
		return len(l4) >= 20 && binary.BigEndian.Uint16(l4[0:]) == sport && l4[12] == 1 &&
			binary.BigEndian.Uint32(l4[16:]) == tag
	}
	return rawReach(p.From, p.To, p.Src, p.Dst, unix.IPPROTO_SCTP, pkt, match)
}

// rawReach sends pkt (the layer 4 packet) from `from` and tells whether a
// packet that match accepts reached `to` within ProbeTimeout.
func rawReach(from, to *NS, src, dst netip.Addr, proto int, pkt []byte, match func(l4 []byte) bool) (bool, error) {
	p, err := openRawPath(from, to, src, dst, proto, 0)
	if err != nil {
		return false, err
	}
	defer p.close()
	if err := p.send(func(send func([]byte) error) error { return send(pkt) }); err != nil {
		return false, err
	}
	found := false
	err = p.receive(func(l4 []byte) bool {
		found = match(l4)
		return found
	})
	return found, err
}

// inetChecksum is the Internet checksum of a TCP or UDP segment with its
// pseudo-header (RFC 793, RFC 8200 section 8.1).
func inetChecksum(src, dst netip.Addr, proto byte, seg []byte) uint16 {
	var pseudo []byte
	pseudo = append(pseudo, src.AsSlice()...)
	pseudo = append(pseudo, dst.AsSlice()...)
	if src.Is4() {
		pseudo = append(pseudo, 0, proto, byte(len(seg)>>8), byte(len(seg)))
	} else {
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(seg)))
		pseudo = append(pseudo, 0, 0, 0, proto)
	}
	var sum uint32
	for _, b := range [][]byte{pseudo, seg} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
