package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/conntrack"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/policy"
	pt "github.com/palisade-dev/palisade/dataplane/policy/policytest"
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
	b := bk.new(t, node)
	if _, err := b.Sync(ctx, allowed); err != nil {
		t.Fatalf("sync allowed: %v", err)
	}

	// The pod connects to the node's server (SYN first: allowed).
	server := net.JoinHostPort(node.IP4.String(), strconv.Itoa(nodeServerPort))
	var ln net.Listener
	if err := node.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", server)
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
	var pc net.Conn
	if err := pod.Do(func() error {
		var err error
		pc, err = net.DialTimeout("tcp4", server, time.Second)
		return err
	}); err != nil {
		t.Fatalf("allowed connection to the node: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	var nc net.Conn
	select {
	case nc = <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("the node's server accepted nothing")
	}
	t.Cleanup(func() { nc.Close() })
	exchange(t, pc, nc, "hello node")
	exchange(t, nc, pc, "hello pod")
	podPort := pc.LocalAddr().(*net.TCPAddr).Port

	// The pod stops acknowledging: its namespace drops its own segments to
	// the node's server and counts the node's segments that reach it.
	time.Sleep(100 * time.Millisecond) // let the last delayed ACK go
	pod.Run(t, "nft", fmt.Sprintf(`add table inet pmoblock
add chain inet pmoblock out { type filter hook output priority 0; }
add chain inet pmoblock in { type filter hook input priority 0; }
add rule inet pmoblock out ip daddr %s tcp dport %d tcp sport %d drop
add rule inet pmoblock in ip saddr %s tcp sport %d tcp dport %d counter`,
		node.IP4, nodeServerPort, podPort, node.IP4, nodeServerPort, podPort))
	if _, err := nc.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// The first transmission and at least one retransmission (RTO 200 ms)
	// reach the pod while the entry lives.
	time.Sleep(350 * time.Millisecond)
	if got := fromNode(t, pod); got < 2 {
		t.Fatalf("%d segments of unacknowledged data reached the pod before the cut, want a transmission and a retransmission", got)
	}

	// Tightened: the pod's egress to the server is denied, the cutter
	// deletes the entry.
	if _, err := b.Sync(ctx, tightened); err != nil {
		t.Fatalf("sync tightened: %v", err)
	}
	cutter := conntrack.Cutter{NetNSFd: node.Fd}
	if n, err := cutter.Cut(ctx, tightened); err != nil || n < 1 {
		t.Fatalf("Cut = %d, %v; want the connection's entry cut", n, err)
	}
	atCut := fromNode(t, pod)

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

	// The node keeps retransmitting (backoff 400 ms, 800 ms, ...): none of
	// it reaches the pod or starts an entry.
	time.Sleep(1200 * time.Millisecond)
	if got := fromNode(t, pod); got != atCut {
		t.Errorf("%d retransmissions of the node reached the pod after the cut: the connection revived", got-atCut)
	}
	if n := connEntries(t, cutter, pod.IP4, podPort, node.IP4, nodeServerPort); n != 0 {
		t.Errorf("%d conntrack entries between pod and node after the cut: the connection revived", n)
	}

	// The pod acknowledges again and sends: nothing gets through.
	pod.Run(t, "nft", "flush chain inet pmoblock out")
	if _, err := pc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(time.Second))
	// The node's socket may also have failed (its retransmissions were
	// refused by its own output hook): only data read means a revival.
	if n, err := io.ReadFull(nc, make([]byte, 4)); n > 0 {
		t.Errorf("the node read %d bytes (%v) after the cut: the connection revived", n, err)
	}
	if got := fromNode(t, pod); got != atCut {
		t.Errorf("%d segments of the node reached the pod after the cut", got-atCut)
	}
	if n := connEntries(t, cutter, pod.IP4, podPort, node.IP4, nodeServerPort); n != 0 {
		t.Errorf("%d conntrack entries between pod and node at the end: the connection revived", n)
	}

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

// fromNode is how many of the node's segments of the connection have
// reached the pod's input hook.
func fromNode(t *testing.T, pod *netnstest.Pod) int {
	t.Helper()
	m := packetsRE.FindStringSubmatch(pod.Run(t, "nft", "list", "chain", "inet", "pmoblock", "in"))
	if m == nil {
		t.Fatal("no counter in the pod's chain")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
