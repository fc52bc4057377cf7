package kerneltest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/conntrack"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// TestCutConnectionStaysCut is the regression test of a cut connection that
// revived: the conntrack cutter deleted the entry of a client→server
// connection a tightened ingress policy denied while the server still had
// unacknowledged data; the server's retransmission was picked up mid-stream
// by conntrack (nf_conntrack_tcp_loose=1) as a new server→client
// connection, which nothing judges (the server is not egress-isolated, the
// client not ingress-isolated), and the client's packets then passed as its
// replies. Both rulesets now drop a TCP packet that would start an entry
// without being a SYN, to or from a policed pod.
//
// Namespaces are named pfi-*: one node with a client, a server (isolated
// for ingress) and a bystander pod no policy selects.
func TestCutConnectionStaysCut(t *testing.T) {
	testenv.RequireRoot(t)
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) { checkCutStaysCut(t, bk) })
	}
}

const midStreamPort = 7000

func checkCutStaysCut(t *testing.T, bk backendKind) {
	node := netnstest.NewNodePrefixed(t, "pfi", "pfi-node", 1)
	client, server, other := node.AddPod(t, 2, true), node.AddPod(t, 3, true), node.AddPod(t, 4, true)
	for _, p := range []*netnstest.Pod{client, server, other} {
		p.Serve(t, []int{80}, nil)
	}
	var warm []netnstest.Probe
	for _, v6 := range []bool{false, true} {
		for _, pair := range [][2]*netnstest.Pod{{client, server}, {server, client}, {other, client}} {
			warm = append(warm, netnstest.Probe{From: pair[0].NS, Src: podAddr(pair[0], v6), Dst: podAddr(pair[1], v6), Protocol: corev1.ProtocolTCP, Port: 80})
		}
	}
	netnstest.WaitReachable(t, warm)

	state := func(port int32) *policy.State {
		st := policy.Compute(policy.Input{
			NodeName:   node.Name,
			Namespaces: []policy.Namespace{pt.Namespace("x", nil)},
			Pods: []policy.Pod{
				pt.Pod("x", "client", node.Name, map[string]string{"app": "client"}, client.IP4.String(), client.IP6.String()),
				pt.Pod("x", "server", node.Name, map[string]string{"app": "server"}, server.IP4.String(), server.IP6.String()),
				pt.Pod("x", "other", node.Name, map[string]string{"app": "other"}, other.IP4.String(), other.IP6.String()),
			},
			Policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "server", pt.Selecting(map[string]string{"app": "server"}),
				pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "client"})), pt.TCP(port)))},
		})
		if len(st.Errors) > 0 {
			t.Fatalf("state: %v", st.Errors)
		}
		return &st
	}
	allowed, tightened := state(midStreamPort), state(9999)
	ctx := context.Background()
	b := bk.new(t, node)
	if _, err := b.Sync(ctx, allowed); err != nil {
		t.Fatalf("sync allowed: %v", err)
	}

	// A normal connection (SYN first) from client to server is allowed;
	// then the client stops acknowledging: its namespace drops its own
	// segments to the server, and counts the server's segments that reach it.
	conn := openStalledConn(t, server.NS, client.NS, server.IP4, midStreamPort, "pfiblock")
	cc, sc, clientPort := conn.Client, conn.Server, conn.ClientPort

	// Tightened: the cutter deletes the entry.
	if _, err := b.Sync(ctx, tightened); err != nil {
		t.Fatalf("sync tightened: %v", err)
	}
	cutter := conntrack.Cutter{NetNSFd: node.Fd}
	if n, err := cutter.Cut(ctx, tightened); err != nil || n < 1 {
		t.Fatalf("Cut = %d, %v; want the connection's entry cut", n, err)
	}
	atCut := conn.Arrived(t)

	// Crafted segments: mid-stream ones from the policed server are
	// dropped in both families; a SYN from it (a new connection nothing
	// judges) and a mid-stream one between pods no policy isolates pass.
	for _, v6 := range []bool{false, true} {
		for _, c := range []struct {
			what     string
			from, to *netnstest.Pod
			flags    byte
			want     bool
		}{
			{"server ACK to client", server, client, netnstest.TCPAck, false},
			{"server data ACK+PSH to client", server, client, netnstest.TCPAck | 0x08, false},
			{"client ACK to server", client, server, netnstest.TCPAck, false},
			{"server SYN to client", server, client, netnstest.TCPSyn, true},
			{"unpoliced ACK", other, client, netnstest.TCPAck, true},
		} {
			got, err := netnstest.RawTCP(c.from.NS, c.to.NS, podAddr(c.from, v6), podAddr(c.to, v6), 80, c.flags)
			if err != nil {
				t.Fatalf("%s: %v", c.what, err)
			}
			if got != c.want {
				t.Errorf("%s (v6=%v): arrived=%v, want %v", c.what, v6, got, c.want)
			}
		}
	}

	// The server keeps retransmitting (backoff 400 ms, 800 ms, ...): none
	// of it reaches the client or starts an entry.
	time.Sleep(1200 * time.Millisecond)
	if got := conn.Arrived(t); got != atCut {
		t.Errorf("%d server retransmissions reached the client after the cut", got-atCut)
	}
	if n := connEntries(t, cutter, client.IP4, clientPort, server.IP4, midStreamPort); n != 0 {
		t.Errorf("%d conntrack entries between client and server after the cut: the connection revived", n)
	}

	// The client acknowledges again and sends: nothing gets through, the
	// connection stays dead.
	client.Run(t, "nft", "flush chain inet pfiblock out")
	if _, err := cc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = sc.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := io.ReadFull(sc, make([]byte, 4)); !isTimeout(err) {
		t.Errorf("server read %d bytes, %v after the cut: the connection revived", n, err)
	}
	if got := conn.Arrived(t); got != atCut {
		t.Errorf("%d server segments reached the client after the cut", got-atCut)
	}
	if n := connEntries(t, cutter, client.IP4, clientPort, server.IP4, midStreamPort); n != 0 {
		t.Errorf("%d conntrack entries between client and server at the end: the connection revived", n)
	}
}

func podAddr(p *netnstest.Pod, v6 bool) netip.Addr {
	if v6 {
		return p.IP6
	}
	return p.IP4
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

var packetsRE = regexp.MustCompile(`counter packets (\d+)`)

// connEntries counts the node's conntrack entries of the connection from
// client:clientPort to server:serverPort, in either direction (a revived
// one starts at the server).
func connEntries(t *testing.T, c conntrack.Cutter, client netip.Addr, clientPort int, server netip.Addr, serverPort int) int {
	t.Helper()
	flows, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range flows {
		if (f.Src == client && f.Dst == server && int(f.Port) == serverPort) || (f.Src == server && f.Dst == client && int(f.Port) == clientPort) {
			n++
		}
	}
	return n
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}
