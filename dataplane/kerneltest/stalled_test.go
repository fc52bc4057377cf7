package kerneltest

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
)

// stalledConn is an allowed TCP connection whose client has stopped
// acknowledging: the server has unacknowledged data in flight and keeps
// retransmitting it. That retransmission is what would revive the
// connection mid-stream (nf_conntrack_tcp_loose) after the cutter deletes
// its conntrack entry.
type stalledConn struct {
	Client, Server net.Conn
	ClientPort     int
	clientNS       *netnstest.NS
	table          string
}

// openStalledConn connects clientNS to a server on serverIP:port in
// serverNS (SYN first: the current rules must allow it), exchanges data
// both ways, then makes the client's namespace drop its own segments to the
// server (table inet `table`, which also counts the server's segments that
// reach the client) and has the server send data. It returns once a
// transmission and at least one retransmission reached the client.
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
	s := &stalledConn{clientNS: clientNS, table: table}
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
	s.ClientPort = s.Client.LocalAddr().(*net.TCPAddr).Port

	time.Sleep(100 * time.Millisecond) // let the last delayed ACK go
	clientNS.Run(t, "nft", fmt.Sprintf(`add table inet %[1]s
add chain inet %[1]s out { type filter hook output priority 0; }
add chain inet %[1]s in { type filter hook input priority 0; }
add rule inet %[1]s out ip daddr %[2]s tcp dport %[3]d tcp sport %[4]d drop
add rule inet %[1]s in ip saddr %[2]s tcp sport %[3]d tcp dport %[4]d counter`,
		table, serverIP, port, s.ClientPort))
	if _, err := s.Server.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// The first transmission and at least one retransmission (RTO 200 ms)
	// reach the client while the entry lives.
	time.Sleep(350 * time.Millisecond)
	if got := s.Arrived(t); got < 2 {
		t.Fatalf("%d segments of unacknowledged data reached the client before the cut, want a transmission and a retransmission", got)
	}
	return s
}

// Arrived is how many of the server's segments of the connection have
// reached the client since it stopped acknowledging.
func (s *stalledConn) Arrived(t *testing.T) int {
	t.Helper()
	m := packetsRE.FindStringSubmatch(s.clientNS.Run(t, "nft", "list", "chain", "inet", s.table, "in"))
	if m == nil {
		t.Fatalf("no counter in table %s of the client", s.table)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
