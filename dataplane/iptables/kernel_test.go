package iptables_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/policy"
	pt "github.com/palisade-dev/palisade/dataplane/policy/policytest"
	"github.com/palisade-dev/palisade/e2e/framework/probe"
)

const (
	TCP  = probe.TCP
	UDP  = probe.UDP
	SCTP = probe.SCTP
)

// kernelPods are the pods of the kernel tests: x/a, x/b and y/c on this
// node, y/r on another node (a peer by its IP, never a target here). ext1
// and ext2 are machines outside the cluster.
func kernelPods() []policy.Pod {
	return []policy.Pod{
		pt.WithPorts(pt.Pod("x", "a", node, map[string]string{"app": "a"}, "10.101.1.1", "fd00:101::1:1"),
			policy.ContainerPort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080}),
		pt.Pod("x", "b", node, map[string]string{"app": "b"}, "10.101.1.2", "fd00:101::1:2"),
		pt.Pod("y", "c", node, map[string]string{"app": "c"}, "10.101.2.3", "fd00:101::2:3"),
		pt.Pod("y", "r", "node-b", map[string]string{"app": "r"}, "10.101.9.1", "fd00:101::9:1"),
	}
}

func kernelNode(t *testing.T) *testNode {
	n := newTestNode(t)
	for _, p := range kernelPods() {
		n.addHost(p.Namespace+"/"+p.Name, p.IPs[0].String(), p.IPs[1].String())
	}
	n.addHost("ext1", "10.101.200.1", "fd00:101::c8:1")
	n.addHost("ext2", "10.101.200.2", "fd00:101::c8:2")
	return n
}

func newBackend(t *testing.T) *iptables.Backend {
	t.Helper()
	b, err := iptables.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func endPort(proto corev1.Protocol, p, end int32) networkingv1.NetworkPolicyPort {
	return pt.PortRange(proto, p, end)
}

// TestKernelSemantics programs a series of states into a real kernel and
// probes real TCP, UDP and SCTP connections between namespaces, IPv4 and
// IPv6, for every NetworkPolicy feature.
func TestKernelSemantics(t *testing.T) {
	n := kernelNode(t)
	b := newBackend(t)
	both := func(c check) []check { c6 := c; c6.v6 = true; return []check{c, c6} }
	var all []check
	add := func(cs ...[]check) []check {
		var out []check
		for _, c := range cs {
			out = append(out, c...)
		}
		return out
	}
	one := func(c check) []check { return []check{c} }

	scenarios := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		checks   []check
	}{
		{
			name: "ingress: selectors, ipBlock except, numeric and named ports, endPort, protocols",
			policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "web", pt.Selecting(map[string]string{"app": "a"}),
				pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"})), pt.TCP(80), pt.Port(corev1.ProtocolSCTP, 81)),
				pt.IngressRule(pt.Peers(pt.NamespacePeer(map[string]string{"team": "y"})), endPort(corev1.ProtocolUDP, 80, 81)),
				pt.IngressRule(pt.Peers(pt.BlockPeer("10.101.200.0/24", "10.101.200.1/32"), pt.BlockPeer("fd00:101::c8:0/120", "fd00:101::c8:1/128")),
					pt.NamedPort(corev1.ProtocolTCP, "http")),
			)},
			checks: add(
				both(check{"x/b", "x/a", TCP, 80, false, true}),
				both(check{"x/b", "x/a", TCP, 81, false, false}),
				both(check{"x/b", "x/a", UDP, 80, false, false}),
				one(check{"x/b", "x/a", SCTP, 81, false, true}),
				one(check{"x/b", "x/a", SCTP, 80, false, false}),
				one(check{"y/c", "x/a", SCTP, 81, false, false}),
				both(check{"y/c", "x/a", UDP, 80, false, true}),
				both(check{"y/c", "x/a", UDP, 81, false, true}),
				both(check{"y/c", "x/a", TCP, 80, false, false}),
				both(check{"y/r", "x/a", UDP, 81, false, true}), // remote pod, matched by its IP
				both(check{"ext2", "x/a", TCP, 8080, false, true}),
				both(check{"ext1", "x/a", TCP, 8080, false, false}), // except
				both(check{"ext2", "x/a", TCP, 80, false, false}),
				both(check{"x/a", "x/b", TCP, 81, false, true}), // unselected pod open
				both(check{"ext1", "y/c", TCP, 80, false, true}),
				both(check{"node", "x/a", TCP, 81, false, true}), // node → pod
			),
		},
		{
			name: "egress: named ports on peers, namespace+pod selectors, ipBlock, pod → node",
			policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "out", pt.Selecting(map[string]string{"app": "b"}), pt.Types(networkingv1.PolicyTypeEgress),
				pt.EgressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "a"})), pt.NamedPort(corev1.ProtocolTCP, "http")),
				pt.EgressRule(pt.Peers(pt.NamespacePodPeer(map[string]string{"team": "y"}, map[string]string{})), pt.Port(corev1.ProtocolSCTP, 80), pt.Port(corev1.ProtocolUDP, 80)),
				pt.EgressRule(pt.Peers(pt.BlockPeer("10.101.200.0/24"), pt.BlockPeer("fd00:101::c8:0/120")), pt.TCP(81)),
			)},
			checks: add(
				both(check{"x/b", "x/a", TCP, 8080, false, true}),
				both(check{"x/b", "x/a", TCP, 80, false, false}),
				one(check{"x/b", "y/c", SCTP, 80, false, true}),
				one(check{"x/b", "y/c", SCTP, 81, false, false}),
				both(check{"x/b", "y/c", UDP, 80, false, true}),
				both(check{"x/b", "y/c", TCP, 80, false, false}),
				both(check{"x/b", "y/r", UDP, 80, false, true}),
				both(check{"x/b", "ext1", TCP, 81, false, true}),
				both(check{"x/b", "ext1", TCP, 80, false, false}),
				both(check{"x/b", "node", TCP, 80, false, false}), // egress checked on INPUT
				both(check{"node", "x/b", TCP, 80, false, true}),  // node → pod, reply established
				both(check{"x/a", "x/b", TCP, 80, false, true}),
			),
		},
		{
			name: "established replies pass an egress deny; ingress and egress both checked",
			policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "lock", pt.Selecting(map[string]string{"app": "a"}),
				pt.Types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress),
				pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"})), pt.TCP(80), pt.Port(corev1.ProtocolUDP, 80), pt.Port(corev1.ProtocolSCTP, 80)),
			)},
			checks: add(
				both(check{"x/b", "x/a", TCP, 80, false, true}),
				both(check{"x/b", "x/a", UDP, 80, false, true}),
				one(check{"x/b", "x/a", SCTP, 80, false, true}),
				both(check{"x/a", "x/b", TCP, 80, false, false}),
				both(check{"y/c", "x/a", TCP, 80, false, false}),
				both(check{"x/a", "node", TCP, 80, false, false}),
				both(check{"node", "x/a", TCP, 81, false, true}),
			),
		},
		{
			name: "several policies add up",
			policies: []*networkingv1.NetworkPolicy{
				pt.Policy("x", "p1", pt.Selecting(map[string]string{"app": "a"}), pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"})), pt.TCP(80))),
				pt.Policy("x", "p2", pt.Selecting(map[string]string{"app": "a"}), pt.IngressRule(pt.Peers(pt.NamespacePeer(map[string]string{"team": "y"})), pt.TCP(81))),
				pt.Policy("x", "p3", pt.Selecting(map[string]string{"app": "b"}), pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "a"})), pt.TCP(81))),
			},
			checks: add(
				both(check{"x/b", "x/a", TCP, 80, false, true}),
				both(check{"x/b", "x/a", TCP, 81, false, false}),
				both(check{"y/c", "x/a", TCP, 81, false, true}),
				both(check{"y/c", "x/a", TCP, 80, false, false}),
				both(check{"x/a", "x/b", TCP, 81, false, true}),
				both(check{"x/a", "x/b", TCP, 80, false, false}),
				both(check{"y/c", "x/b", TCP, 81, false, false}),
			),
		},
	}
	// Without policies every pair of every scenario connects: a denied
	// probe later is the policy's doing, not the network's.
	for _, s := range scenarios {
		for _, c := range s.checks {
			c.want = true
			all = append(all, c)
		}
	}
	n.sync(b, cluster(kernelPods()))
	n.expect("no policy", all)
	if t.Failed() {
		t.FailNow()
	}
	for _, s := range scenarios {
		n.sync(b, cluster(kernelPods(), s.policies...))
		// Fresh neighbour caches: ARP and IPv6 neighbour discovery must
		// work under the policy, not only be remembered from before it.
		n.flushNeighbours()
		n.expect(s.name, s.checks)
	}
	// Policies removed: everything open again, and only the fixed chains
	// remain.
	n.sync(b, cluster(kernelPods()))
	n.expect("policies removed", all)
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		for _, l := range strings.Split(n.ours(fam), "\n") {
			if strings.HasPrefix(l, ":PALISADE-") && !strings.HasPrefix(l, ":"+iptables.ChainForward) && !strings.HasPrefix(l, ":"+iptables.ChainInput) &&
				!strings.HasPrefix(l, ":"+iptables.ChainEgress) && !strings.HasPrefix(l, ":"+iptables.ChainIngress) {
				t.Errorf("%s: chain left after its policy was removed: %s", fam, l)
			}
		}
	}
}
