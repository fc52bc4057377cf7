package conntrack

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

const node = "node-a"

// cluster: web (local, dual-stack, named port "http" = TCP 8080) and client
// (local), plus remote on another node.
func testInput(policies ...*networkingv1.NetworkPolicy) policy.Input {
	return policy.Input{
		NodeName:   node,
		Namespaces: []policy.Namespace{pt.Namespace("x", nil)},
		Pods: []policy.Pod{
			pt.WithPorts(pt.Pod("x", "web", node, map[string]string{"app": "web"}, "10.0.0.1", "fd00::1"),
				policy.ContainerPort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080}),
			pt.Pod("x", "client", node, map[string]string{"app": "client"}, "10.0.0.2", "fd00::2"),
			pt.Pod("x", "remote", "node-b", map[string]string{"app": "remote"}, "10.0.1.3"),
		},
		Policies: policies,
	}
}

func flow(src, dst string, proto corev1.Protocol, port uint16) Flow {
	return Flow{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Protocol: proto, Port: port}
}

func TestJudgeDenied(t *testing.T) {
	webFromClientHTTP := pt.Policy("x", "web", pt.Selecting(map[string]string{"app": "web"}),
		pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "client"})),
			pt.NamedPort(corev1.ProtocolTCP, "http"), pt.Port(corev1.ProtocolUDP, 53), pt.Port(corev1.ProtocolSCTP, 9)))
	clientEgressNone := pt.Policy("x", "client-egress", pt.Selecting(map[string]string{"app": "client"}),
		pt.Types(networkingv1.PolicyTypeEgress))
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		flow     Flow
		denied   bool
	}{
		{"no policy denies nothing", nil, flow("10.0.0.2", "10.0.0.1", corev1.ProtocolTCP, 22), false},
		{"named port resolved as the model does", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolTCP, 8080), false},
		{"named port on IPv6", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("fd00::2", "fd00::1", corev1.ProtocolTCP, 8080), false},
		{"other TCP port denied", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolTCP, 80), true},
		{"other TCP port denied on IPv6", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("fd00::2", "fd00::1", corev1.ProtocolTCP, 80), true},
		{"UDP allowed", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolUDP, 53), false},
		{"UDP on the TCP port denied", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolUDP, 8080), true},
		{"SCTP allowed", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolSCTP, 9), false},
		{"SCTP elsewhere denied", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolSCTP, 10), true},
		{"remote peer not selected", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("10.0.1.3", "10.0.0.1", corev1.ProtocolTCP, 8080), true},
		{"reverse direction is web's own egress, not isolated", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("10.0.0.1", "10.0.0.2", corev1.ProtocolTCP, 40000), false},
		{"unpoliced pair untouched", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("10.0.1.3", "10.0.0.2", corev1.ProtocolTCP, 80), false},
		{"addresses outside the cluster untouched", []*networkingv1.NetworkPolicy{webFromClientHTTP},
			flow("192.0.2.1", "192.0.2.2", corev1.ProtocolUDP, 53), false},
		{"egress isolation denies the source side", []*networkingv1.NetworkPolicy{webFromClientHTTP, clientEgressNone},
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolTCP, 8080), true},
		{"egress isolation: to the outside too", []*networkingv1.NetworkPolicy{clientEgressNone},
			flow("10.0.0.2", "192.0.2.1", corev1.ProtocolUDP, 53), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := policy.Compute(testInput(tc.policies...))
			if got := NewJudge(&st).Denied(tc.flow); got != tc.denied {
				t.Errorf("Denied(%+v) = %v, want %v", tc.flow, got, tc.denied)
			}
		})
	}
}

// The judge must agree with the model on every packet: it only adds a fast
// path for unpoliced addresses.
func TestJudgeAgreesWithModel(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		in := pt.RandomInput(r)
		st := policy.Compute(in)
		j := NewJudge(&st)
		for _, p := range pt.RandomPackets(r, in, 300) {
			f := Flow{Src: p.Src, Dst: p.Dst, Protocol: p.Protocol, Port: p.Port}
			if got, want := j.Denied(f), !st.Allows(p); got != want {
				t.Fatalf("seed %d: Denied(%+v) = %v, model allows = %v", seed, f, got, !want)
			}
		}
	}
}

func TestFlowOf(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name        string
		orig, reply Tuple
		dnat        bool
		want        Flow
		ok          bool
	}{
		{"tcp", Tuple{a("10.0.0.2"), a("10.0.0.1"), 40000, 80, 6}, Tuple{a("10.0.0.1"), a("10.0.0.2"), 80, 40000, 6}, false,
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolTCP, 80), true},
		{"udp v6", Tuple{a("fd00::2"), a("fd00::1"), 40000, 53, 17}, Tuple{a("fd00::1"), a("fd00::2"), 53, 40000, 17}, false,
			flow("fd00::2", "fd00::1", corev1.ProtocolUDP, 53), true},
		{"sctp", Tuple{a("10.0.0.2"), a("10.0.0.1"), 5, 9, 132}, Tuple{a("10.0.0.1"), a("10.0.0.2"), 9, 5, 132}, false,
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolSCTP, 9), true},
		{"ipv4-mapped addresses unmapped", Tuple{a("::ffff:10.0.0.2"), a("::ffff:10.0.0.1"), 1, 80, 6}, Tuple{}, false,
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolTCP, 80), true},
		{"service: policy sees the DNATed destination", Tuple{a("10.0.0.2"), a("10.96.0.10"), 40000, 443, 6},
			Tuple{a("10.0.0.1"), a("10.0.0.2"), 8443, 40000, 6}, true,
			flow("10.0.0.2", "10.0.0.1", corev1.ProtocolTCP, 8443), true},
		{"icmp not judged", Tuple{a("10.0.0.2"), a("10.0.0.1"), 0, 0, 1}, Tuple{}, false, Flow{}, false},
		{"missing address", Tuple{Dst: a("10.0.0.1"), DstPort: 80, Proto: 6}, Tuple{}, false, Flow{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FlowOf(tc.orig, tc.reply, tc.dnat)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("FlowOf = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
