package kerneltest

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/conntrack"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// TestCutNodeConnectionStaysCut is TestCutConnectionStaysCut for a
// connection between a pod and a server on its own node (the node's
// namespace, as a hostNetwork pod or a node daemon would be): the input hook
// judges it by the pod's egress policy. After the cutter deleted its entry,
// the node's retransmission of unacknowledged data left through the output
// hook, which judged nothing: conntrack picked it up mid-stream
// (nf_conntrack_tcp_loose=1) as a new node→pod entry, and the pod's packets
// then passed input-egress as its replies. Both rulesets now drop, on the
// output hook, a TCP packet to a policed pod that would start an entry
// without being a SYN, and nothing else there: the node still opens new
// connections to the pod (kubelet probes) under default deny.
//
// Namespaces are named pmo-*: one node, one pod isolated in both
// directions.
func TestCutNodeConnectionStaysCut(t *testing.T) {
	testenv.RequireRoot(t)
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) { checkCutNodeConnectionStaysCut(t, bk) })
	}
}

// nodeServerPort is the port of the server in the node's namespace.
const nodeServerPort = 7001

func checkCutNodeConnectionStaysCut(t *testing.T, bk backendKind) {
	node := netnstest.NewNodePrefixed(t, "pmo", "pmo-node", 1)
	pod := node.AddPod(t, 2, true)
	pod.Serve(t, []int{80}, nil)
	node.Serve(t, []int{80}, nil)
	tcp := corev1.ProtocolTCP
	var warm []netnstest.Probe
	for _, v6 := range []bool{false, true} {
		nodeIP := node.IP4
		if v6 {
			nodeIP = node.IP6
		}
		warm = append(warm,
			netnstest.Probe{From: node.NS, Src: nodeIP, Dst: podAddr(pod, v6), Protocol: tcp, Port: 80},
			netnstest.Probe{From: pod.NS, Src: podAddr(pod, v6), Dst: nodeIP, Protocol: tcp, Port: 80})
	}
	netnstest.WaitReachable(t, warm)

	// The pod may reach the node on port only; no ingress is allowed at
	// all (default deny).
	state := func(port int32) *policy.State {
		st := policy.Compute(policy.Input{
			NodeName:   node.Name,
			Namespaces: []policy.Namespace{pt.Namespace("x", nil)},
			Pods: []policy.Pod{
				pt.Pod("x", "client", node.Name, map[string]string{"app": "client"}, pod.IP4.String(), pod.IP6.String()),
			},
			Policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "client", pt.Selecting(map[string]string{"app": "client"}),
				pt.Types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress),
				pt.EgressRule(pt.Peers(pt.BlockPeer(node.IP4.String()+"/32"), pt.BlockPeer(node.IP6.String()+"/128")), pt.TCP(port)))},
		})
		if len(st.Errors) > 0 {
			t.Fatalf("state: %v", st.Errors)
		}
		return &st
	}
	allowed, tightened := state(nodeServerPort), state(9999)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b := bk.new(t, node.NS)
	if _, err := b.Sync(ctx, allowed); err != nil {
		t.Fatalf("sync allowed: %v", err)
	}

	// The pod connects to the node's server (SYN first: allowed), then
	// stops acknowledging: its namespace drops its own segments to the
	// node's server and counts the node's segments that reach it.
	conn := openStalledConn(t, node.NS, pod.NS, node.IP4, nodeServerPort, "pmoblock")

	// Tightened: the pod's egress to the server is denied, the cutter
	// deletes the entry.
	if _, err := b.Sync(ctx, tightened); err != nil {
		t.Fatalf("sync tightened: %v", err)
	}
	cutter := conntrack.Cutter{NetNSFd: node.Fd}
	if n, err := cutter.Cut(ctx, tightened); err != nil || n < 1 {
		t.Fatalf("Cut = %d, %v; want the connection's entry cut", n, err)
	}
	atCut := conn.Arrived(t)

	// Crafted segments: the node's mid-stream ones to the policed pod are
	// dropped in both families; its SYN (a new connection: a kubelet probe)
	// passes though no policy allows ingress.
	for _, v6 := range []bool{false, true} {
		nodeIP := node.IP4
		if v6 {
			nodeIP = node.IP6
		}
		for _, c := range []struct {
			what     string
			from, to *netnstest.NS
			src, dst bool // true: the pod's address, false: the node's
			flags    byte
			want     bool
		}{
			{"node ACK to pod", node.NS, pod.NS, false, true, netnstest.TCPAck, false},
			{"node data ACK+PSH to pod", node.NS, pod.NS, false, true, netnstest.TCPAck | 0x08, false},
			{"pod ACK to node", pod.NS, node.NS, true, false, netnstest.TCPAck, false},
			{"node SYN to pod", node.NS, pod.NS, false, true, netnstest.TCPSyn, true},
		} {
			addr := func(isPod bool) netip.Addr {
				if isPod {
					return podAddr(pod, v6)
				}
				return nodeIP
			}
			got, err := netnstest.RawTCP(c.from, c.to, addr(c.src), addr(c.dst), 80, c.flags)
			if errors.Is(err, unix.EPERM) && c.from == node.NS {
				// A drop in the sender's own output hook fails the send.
				got, err = false, nil
			}
			if err != nil {
				t.Fatalf("%s: %v", c.what, err)
			}
			if got != c.want {
				t.Errorf("%s (v6=%v): arrived=%v, want %v", c.what, v6, got, c.want)
			}
		}
	}

	conn.checkStaysCut(t, cutter, atCut, true)

	// Kubelet probes: the node opens new connections to the pod, which
	// carry data both ways, while the pod's own new connection to the
	// node's port 80 is denied.
	for _, v6 := range []bool{false, true} {
		nodeIP := node.IP4
		if v6 {
			nodeIP = node.IP6
		}
		for _, c := range []struct {
			p    netnstest.Probe
			want bool
		}{
			{netnstest.Probe{From: node.NS, Src: nodeIP, Dst: podAddr(pod, v6), Protocol: tcp, Port: 80}, true},
			{netnstest.Probe{From: pod.NS, Src: podAddr(pod, v6), Dst: nodeIP, Protocol: tcp, Port: 80}, false},
		} {
			got, err := netnstest.Reach(c.p)
			if err != nil {
				t.Fatalf("%s: %v", c.p, err)
			}
			if got != c.want {
				t.Errorf("%s after the cut: reached=%v, want %v", c.p, got, c.want)
			}
		}
	}
}
