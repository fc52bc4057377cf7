package netnstest

import (
	"errors"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/palisade-dev/palisade/internal/netns"
)

// Serve runs echo servers inside the namespace, on every address of both
// families: TCP on tcpPorts (echoes the stream back) and UDP on udpPorts
// (echoes each datagram to its sender, see EchoUDP). They stop when the
// test ends.
//
// SCTP needs no server: probes watch for the INIT chunk itself (see
// Probe).
func (ns *NS) Serve(t testing.TB, tcpPorts, udpPorts []int) {
	t.Helper()
	var closers []io.Closer
	t.Cleanup(func() {
		for _, c := range closers {
			_ = c.Close()
		}
	})
	err := ns.Do(func() error {
		for _, port := range tcpPorts {
			l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
			if err != nil {
				return err
			}
			closers = append(closers, l)
			go acceptEcho(l)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("servers in %s: %v", ns.Name, err)
	}
	for _, port := range udpPorts {
		ns.EchoUDP(t, port)
	}
}

// EchoUDP runs a UDP echo server on port inside the namespace, on every
// address of both families, and returns its socket (to send from it too).
// It stops when the test ends.
func (ns *NS) EchoUDP(t testing.TB, port int) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	if err := ns.Do(func() error {
		var err error
		c, err = net.ListenPacket("udp", ":"+strconv.Itoa(port))
		return err
	}); err != nil {
		t.Fatalf("UDP server in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	go udpEcho(c)
	return c
}

func acceptEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

func udpEcho(c net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		_, _ = c.WriteTo(buf[:n], from)
	}
}

// ForwardTCP accepts TCP connections on listen inside the namespace and
// forwards each to target as seen from the test process's own namespace.
// It lets a process in a node namespace reach an API server bound to the
// host's loopback. It stops when the test ends.
func (ns *NS) ForwardTCP(t testing.TB, listen, target string) {
	t.Helper()
	l, err := netns.Listen(ns.Name, listen)
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", listen, ns.Name, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go netns.Forward(l, target)
}
