package netnstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// FloodSYN sends n TCP SYN segments from `from` (whose address src is) to
// dst:port as fast as a raw socket takes them, each from its own source
// port so that each is a new connection to conntrack, and returns how many
// of them arrived in `to` (watched with a raw socket until ProbeTimeout
// after the last one was sent). It shows what a SYN flood does.
func FloodSYN(from, to *NS, src, dst netip.Addr, port, n int) (arrived int, err error) {
	fam := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: dst.As16()}
	if dst.Is4() {
		fam = unix.AF_INET
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
	}
	var rfd int
	if err := to.Do(func() error {
		var err error
		rfd, err = unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err == nil {
			_ = unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		}
		return err
	}); err != nil {
		return 0, fmt.Errorf("raw receive socket in %s: %w", to.Name, err)
	}
	defer unix.Close(rfd)
	tv := unix.NsecToTimeval((20 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(rfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, err
	}
	const firstPort = 10000
	if err := from.Do(func() error {
		sfd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			return err
		}
		defer unix.Close(sfd)
		for i := range n {
			seg := make([]byte, 20)
			binary.BigEndian.PutUint16(seg[0:], uint16(firstPort+i%50000))
			binary.BigEndian.PutUint16(seg[2:], uint16(port))
			binary.BigEndian.PutUint32(seg[4:], uint32(i))
			seg[12], seg[13] = 5<<4, TCPSyn
			binary.BigEndian.PutUint16(seg[14:], 64240)
			binary.BigEndian.PutUint16(seg[16:], inetChecksum(src, dst, unix.IPPROTO_TCP, seg))
			if err := unix.Sendto(sfd, seg, 0, sa); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("raw send from %s: %w", from.Name, err)
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(ProbeTimeout)
	for time.Now().Before(deadline) {
		m, _, err := unix.Recvfrom(rfd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return arrived, fmt.Errorf("raw receive in %s: %w", to.Name, err)
		}
		l4 := buf[:m]
		if fam == unix.AF_INET {
			if m < 20 {
				continue
			}
			ihl := int(buf[0]&0x0f) * 4
			if m < ihl || netip.AddrFrom4([4]byte(buf[12:16])) != src {
				continue
			}
			l4 = buf[ihl:m]
		}
		if len(l4) >= 20 && binary.BigEndian.Uint16(l4[2:]) == uint16(port) && l4[13] == TCPSyn {
			arrived++
		}
	}
	return arrived, nil
}
