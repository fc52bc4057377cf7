package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/dataplane/conntrack"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
)

// stalledConn is an allowed TCP connection whose client has stopped
// acknowledging: the server has unacknowledged data in flight and keeps
// retransmitting it. That retransmission is what would revive the
// connection mid-stream (nf_conntrack_tcp_loose) after the cutter deletes
// its conntrack entry.
type stalledConn struct {
	Client, Server         net.Conn
	ClientIP, ServerIP     netip.Addr
	ClientPort, ServerPort int
	clientNS, serverNS     *netnstest.NS
	table                  string
}

// openStalledConn connects clientNS to a server on serverIP:port in
// serverNS (SYN first: the current rules must allow it), exchanges data
// both ways, then makes the client's namespace drop its own segments to the
// server (table inet `table`, which also counts the server's segments that
// reach the client) and has the server send data. The server's namespace
// counts the connection's segments its socket sends, on its output hook
// before any firewall (table inet `table`). It returns once a transmission
// and at least one retransmission reached the client.
func openStalledConn(t *testing.T, serverNS, clientNS *netnstest.NS, serverIP netip.Addr, port int, table string) *stalledConn {
	t.Helper()
	addr := net.JoinHostPort(serverIP.String(), strconv.Itoa(port))
	var ln net.Listener
	if err := serverNS.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	s := &stalledConn{ServerIP: serverIP, ServerPort: port, clientNS: clientNS, serverNS: serverNS, table: table}
	if err := clientNS.Do(func() error {
		var err error
		s.Client, err = net.DialTimeout("tcp4", addr, time.Second)
		return err
	}); err != nil {
		t.Fatalf("allowed connection to %s: %v", addr, err)
	}
	t.Cleanup(func() { s.Client.Close() })
	select {
	case s.Server = <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatalf("the server on %s accepted nothing", addr)
	}
	t.Cleanup(func() { s.Server.Close() })
	exchange(t, s.Server, s.Client, "hello")
	exchange(t, s.Client, s.Server, "hello back")
	local := s.Client.LocalAddr().(*net.TCPAddr).AddrPort()
	s.ClientIP, s.ClientPort = local.Addr().Unmap(), int(local.Port())

	// Block only once each side has acknowledged all the other sent (the
	// server's delayed ACK of "hello back" included): a lost ACK would
	// make the client retransmit, which the test does not expect.
	waitFor(t, 5*time.Second, "both ends of the connection to acknowledge all data", func() bool {
		return tcpInfo(t, s.Client).Unacked == 0 && tcpInfo(t, s.Server).Unacked == 0
	})
	clientNS.Run(t, "nft", fmt.Sprintf(`add table inet %[1]s
add chain inet %[1]s out { type filter hook output priority 0; }
add chain inet %[1]s in { type filter hook input priority 0; }
add rule inet %[1]s out ip daddr %[2]s tcp dport %[3]d tcp sport %[4]d drop
add rule inet %[1]s in ip saddr %[2]s tcp sport %[3]d tcp dport %[4]d counter`,
		table, serverIP, port, s.ClientPort))
	serverNS.Run(t, "nft", fmt.Sprintf(`add table inet %[1]s
add chain inet %[1]s sent { type filter hook output priority -400; }
add rule inet %[1]s sent ip saddr %[2]s tcp sport %[3]d ip daddr %[4]s tcp dport %[5]d counter`,
		table, serverIP, port, s.ClientIP, s.ClientPort))
	if _, err := s.Server.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// The first transmission and at least one retransmission (RTO 200 ms)
	// reach the client while the entry lives.
	waitFor(t, 5*time.Second, "a transmission and a retransmission of unacknowledged data to reach the client before the cut", func() bool {
		return s.Arrived(t) >= 2
	})
	return s
}

// Arrived is how many of the server's segments of the connection have
// reached the client since it stopped acknowledging.
func (s *stalledConn) Arrived(t *testing.T) int {
	t.Helper()
	return chainPackets(t, s.clientNS, s.table, "in")
}

// Sent is how many segments of the connection the server's socket has
// sent since the client stopped acknowledging, whatever became of them.
func (s *stalledConn) Sent(t *testing.T) int {
	t.Helper()
	return chainPackets(t, s.serverNS, s.table, "sent")
}

// checkStaysCut checks a stalled connection whose entry the cutter has
// deleted (atCut is Arrived right after): the server's next retransmission
// neither reaches the client nor starts an entry; then the client
// acknowledges again and sends, and nothing of that gets through either.
// serverMayFail is for a server whose own output hook refuses its
// retransmissions, which may fail its socket: then only data read means a
// revival.
func (s *stalledConn) checkStaysCut(t *testing.T, cutter conntrack.Cutter, atCut int, serverMayFail bool) {
	t.Helper()
	// The server keeps retransmitting (backoff 400 ms, 800 ms, ...).
	sent := s.Sent(t)
	waitFor(t, 10*time.Second, "the server to retransmit after the cut", func() bool { return s.Sent(t) > sent })
	if got := s.Arrived(t); got != atCut {
		t.Errorf("%d retransmissions of the server reached the client after the cut: the connection revived", got-atCut)
	}
	if n := s.entries(t, cutter); n != 0 {
		t.Errorf("%d conntrack entries between client and server after the cut: the connection revived", n)
	}

	// The client acknowledges again and sends; once it has retransmitted
	// (nothing acknowledged its segment), the server must have read nothing.
	s.clientNS.Run(t, "nft", "flush chain inet "+s.table+" out")
	retrans := tcpInfo(t, s.Client).Total_retrans
	if _, err := s.Client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the client to retransmit its unacknowledged data", func() bool {
		return tcpInfo(t, s.Client).Total_retrans > retrans
	})
	_ = s.Server.SetReadDeadline(time.Now().Add(time.Second))
	n, err := io.ReadFull(s.Server, make([]byte, 4))
	if serverMayFail && n > 0 || !serverMayFail && !isTimeout(err) {
		t.Errorf("the server read %d bytes, %v after the cut: the connection revived", n, err)
	}
	if got := s.Arrived(t); got != atCut {
		t.Errorf("%d segments of the server reached the client after the cut", got-atCut)
	}
	if n := s.entries(t, cutter); n != 0 {
		t.Errorf("%d conntrack entries between client and server at the end: the connection revived", n)
	}
}

// entries counts the node's conntrack entries of the connection, in either
// direction (a revived one starts at the server).
func (s *stalledConn) entries(t *testing.T, c conntrack.Cutter) int {
	t.Helper()
	return netnstest.Count(t, c.List, func(f conntrack.Flow) bool {
		return (f.Src == s.ClientIP && f.Dst == s.ServerIP && int(f.Port) == s.ServerPort) || (f.Src == s.ServerIP && f.Dst == s.ClientIP && int(f.Port) == s.ClientPort)
	})
}

var packetsRE = regexp.MustCompile(`counter packets (\d+)`)

// chainPackets reads the first counter of an nft chain.
func chainPackets(t *testing.T, ns *netnstest.NS, table, chain string) int {
	t.Helper()
	m := packetsRE.FindStringSubmatch(ns.Run(t, "nft", "list", "chain", "inet", table, chain))
	if m == nil {
		t.Fatalf("no counter in chain %s of table %s in %s", chain, table, ns.Name)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// tcpInfo reads the kernel's TCP_INFO of a connection.
func tcpInfo(t *testing.T, c net.Conn) *unix.TCPInfo {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || ierr != nil {
		t.Fatalf("TCP_INFO: %v", errors.Join(err, ierr))
	}
	return info
}

// waitFor polls cond every 10 ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// exchange writes msg on w and reads it from r.
func exchange(t *testing.T, w, r net.Conn, msg string) {
	t.Helper()
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = r.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != msg {
		t.Fatalf("read %q, %v; want %q", buf, err, msg)
	}
	_ = r.SetReadDeadline(time.Time{})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}
