package netnstest

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// FloodSYN sends n TCP SYN segments from `from` (whose address src is) to
// dst:port as fast as a raw socket takes them, each from its own source
// port so that each is a new connection to conntrack, and returns how many
// of them arrived in `to` (watched with a raw socket until ProbeTimeout
// after the last one was sent). It shows what a SYN flood does.
func FloodSYN(from, to *NS, src, dst netip.Addr, port, n int) (arrived int, err error) {
	p, err := openRawPath(from, to, src, dst, unix.IPPROTO_TCP, 8<<20)
	if err != nil {
		return 0, err
	}
	defer p.close()
	const firstPort = 10000
	if err := p.send(func(send func([]byte) error) error {
		for i := range n {
			seg := make([]byte, 20)
			binary.BigEndian.PutUint16(seg[0:], uint16(firstPort+i%50000))
			binary.BigEndian.PutUint16(seg[2:], uint16(port))
			binary.BigEndian.PutUint32(seg[4:], uint32(i))
			seg[12], seg[13] = 5<<4, TCPSyn
			binary.BigEndian.PutUint16(seg[14:], 64240)
			binary.BigEndian.PutUint16(seg[16:], inetChecksum(src, dst, unix.IPPROTO_TCP, seg))
			if err := send(seg); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, err
	}
	err = p.receive(func(l4 []byte) bool {
		if len(l4) >= 20 && binary.BigEndian.Uint16(l4[2:]) == uint16(port) && l4[13] == TCPSyn {
			arrived++
		}
		return false
	})
	return arrived, err
}
