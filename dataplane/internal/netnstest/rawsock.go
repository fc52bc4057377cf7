package netnstest

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// rawPath is a raw socket pair for one layer 4 protocol between two
// namespaces: packets built by the caller are sent from `from` to dst, and
// what reaches `to` from src is read back, so a test sees exactly what the
// ruleset let through.
type rawPath struct {
	from, to *NS
	src, dst netip.Addr
	proto    int
	fam      int
	sa       unix.Sockaddr
	rfd      int
}

// openRawPath opens the receiving socket in `to` (with a receive buffer of
// rcvbuf bytes when not zero, for floods).
func openRawPath(from, to *NS, src, dst netip.Addr, proto, rcvbuf int) (*rawPath, error) {
	p := &rawPath{from: from, to: to, src: src, dst: dst, proto: proto, fam: unix.AF_INET6, sa: &unix.SockaddrInet6{Addr: dst.As16()}}
	if dst.Is4() {
		p.fam, p.sa = unix.AF_INET, &unix.SockaddrInet4{Addr: dst.As4()}
	}
	if err := to.Do(func() error {
		var err error
		p.rfd, err = unix.Socket(p.fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err == nil && rcvbuf > 0 {
			_ = unix.SetsockoptInt(p.rfd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf)
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("raw receive socket in %s: %w", to.Name, err)
	}
	// A short receive timeout lets receive check its deadline.
	tv := unix.NsecToTimeval((20 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(p.rfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(p.rfd)
		return nil, err
	}
	return p, nil
}

func (p *rawPath) close() { unix.Close(p.rfd) }

// send calls build in `from` with a function that sends one layer 4 packet
// (the kernel adds the IP header).
func (p *rawPath) send(build func(send func(l4 []byte) error) error) error {
	if err := p.from.Do(func() error {
		sfd, err := unix.Socket(p.fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, p.proto)
		if err != nil {
			return err
		}
		defer unix.Close(sfd)
		return build(func(l4 []byte) error { return unix.Sendto(sfd, l4, 0, p.sa) })
	}); err != nil {
		return fmt.Errorf("raw send from %s: %w", p.from.Name, err)
	}
	return nil
}

// receive hands each layer 4 packet from src that reaches `to` to fn, until
// fn returns true or ProbeTimeout has passed.
func (p *rawPath) receive(fn func(l4 []byte) (done bool)) error {
	buf := make([]byte, 2048)
	deadline := time.Now().Add(ProbeTimeout)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(p.rfd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("raw receive in %s: %w", p.to.Name, err)
		}
		l4 := buf[:n]
		if p.fam == unix.AF_INET { // IPv4 raw sockets see the IP header
			if n < 20 {
				continue
			}
			ihl := int(buf[0]&0x0f) * 4
			if n < ihl || netip.AddrFrom4([4]byte(buf[12:16])) != p.src {
				continue
			}
			l4 = buf[ihl:n]
		}
		if fn(l4) {
			return nil
		}
	}
	return nil
}
