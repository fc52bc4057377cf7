package kerneltest

import (
	"context"
	"net/netip"
	"testing"

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
	b := bk.new(t, node.NS)
	if _, err := b.Sync(ctx, allowed); err != nil {
		t.Fatalf("sync allowed: %v", err)
	}

	// A normal connection (SYN first) from client to server is allowed;
	// then the client stops acknowledging: its namespace drops its own
	// segments to the server, and counts the server's segments that reach it.
	conn := openStalledConn(t, server.NS, client.NS, server.IP4, midStreamPort, "pfiblock")

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

	conn.checkStaysCut(t, cutter, atCut, false)
}

func podAddr(p *netnstest.Pod, v6 bool) netip.Addr {
	if v6 {
		return p.IP6
	}
	return p.IP4
}
