package probe

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Protocol is a transport protocol, spelled as in corev1.Protocol.
type Protocol string

// The protocols a probe speaks.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Probe connects to addr over proto and returns the name the server answered
// with. An error means the connection did not complete within timeout (or was
// refused): for a policy test, the traffic was blocked.
//
// Every socket is created in the caller's network namespace at the time of the
// call; callers that probe from a pod lock their thread into its namespace.
func Probe(proto Protocol, addr netip.AddrPort, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	switch proto {
	case TCP:
		return probeTCP(addr, deadline)
	case UDP:
		return probeUDP(addr, deadline)
	case SCTP:
		return probeSCTP(addr, deadline)
	default:
		return "", fmt.Errorf("unknown protocol %q", proto)
	}
}

func probeTCP(addr netip.AddrPort, deadline time.Time) (string, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(deadline)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting: %w", err)
	}
	return strings.TrimSpace(line), nil
}

func probeUDP(addr netip.AddrPort, deadline time.Time) (string, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(deadline)
	buf := make([]byte, 512)
	// Resend now and then: a single datagram may be lost while the node's
	// neighbour entries are still being resolved.
	for {
		if _, err := c.Write([]byte("probe")); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(minTime(deadline, time.Now().Add(250*time.Millisecond)))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n]), nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !time.Now().Before(deadline) {
			return "", err
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func probeSCTP(addr netip.AddrPort, deadline time.Time) (string, error) {
	if !addr.Addr().Is4() {
		return "", errors.New("sctp probes support IPv4 only")
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, sctpProto)
	if err != nil {
		return "", fmt.Errorf("open raw sctp socket: %w", err)
	}
	defer func() { _ = unix.Close(fd) }()
	srcPort := uint16(32768 + rand.IntN(28000))
	tag := rand.Uint32() | 1
	init := encodeSCTP(sctpPacket{SrcPort: srcPort, DstPort: addr.Port(), ChunkType: chunkInit, InitiateTag: tag})
	to := &unix.SockaddrInet4{Addr: addr.Addr().As4()}
	buf := make([]byte, 2048)
	nextSend := time.Time{}
	for {
		now := time.Now()
		if !now.Before(deadline) {
			return "", fmt.Errorf("sctp %s: %w", addr, errSCTPTimeout)
		}
		if !now.Before(nextSend) {
			// Retransmit like a real SCTP stack would (its INIT timer is 1s+).
			if err := unix.Sendto(fd, init, 0, to); err != nil {
				return "", fmt.Errorf("send sctp init: %w", err)
			}
			nextSend = now.Add(300 * time.Millisecond)
		}
		wait := minTime(deadline, nextSend).Sub(now)
		tv := unix.NsecToTimeval(max(int64(wait), int64(time.Millisecond)))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return "", err
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return "", fmt.Errorf("read sctp: %w", err)
		}
		payload, ok := stripIPv4Header(buf[:n])
		if !ok || !ipv4Source(buf[:n], addr.Addr()) {
			continue
		}
		p, err := decodeSCTP(payload)
		if err != nil || p.ChunkType != chunkInitAck || p.VTag != tag ||
			p.SrcPort != addr.Port() || p.DstPort != srcPort {
			continue
		}
		return string(p.Cookie), nil
	}
}

var errSCTPTimeout = errors.New("no INIT ACK before the deadline")

func ipv4Source(pkt []byte, want netip.Addr) bool {
	return len(pkt) >= 20 && netip.AddrFrom4([4]byte(pkt[12:16])) == want
}

// ProbeDNS sends an A query for name over proto (TCP or UDP) to addr and
// returns the answer.
func ProbeDNS(proto Protocol, addr netip.AddrPort, name string, timeout time.Duration) (netip.Addr, error) {
	deadline := time.Now().Add(timeout)
	id := uint16(rand.Uint32())
	q, err := encodeDNSQuery(id, name, dnsTypeA)
	if err != nil {
		return netip.Addr{}, err
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var d net.Dialer
	switch proto {
	case UDP:
		c, err := d.DialContext(ctx, "udp", addr.String())
		if err != nil {
			return netip.Addr{}, err
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(deadline)
		if _, err := c.Write(q); err != nil {
			return netip.Addr{}, err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			return netip.Addr{}, err
		}
		return parseDNSAnswer(buf[:n], id)
	case TCP:
		c, err := d.DialContext(ctx, "tcp", addr.String())
		if err != nil {
			return netip.Addr{}, err
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(deadline)
		msg := binary.BigEndian.AppendUint16(nil, uint16(len(q)))
		if _, err := c.Write(append(msg, q...)); err != nil {
			return netip.Addr{}, err
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return netip.Addr{}, err
		}
		resp := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, resp); err != nil {
			return netip.Addr{}, err
		}
		return parseDNSAnswer(resp, id)
	default:
		return netip.Addr{}, fmt.Errorf("dns over %s is not supported", proto)
	}
}

// PodRecord is the DNS name of a pod's A record, as kube-dns spells it.
func PodRecord(ip netip.Addr, namespace string) string {
	return strings.ReplaceAll(ip.String(), ".", "-") + "." + namespace + ".pod.cluster.local"
}
