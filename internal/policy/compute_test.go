package policy_test

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/policy/policytest"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	tcpP  = corev1.ProtocolTCP
	udpP  = corev1.ProtocolUDP
	sctpP = corev1.ProtocolSCTP
)

// fixture: namespaces x and y; pods on node-a (local) and node-b (remote).
//
//	x/a 10.0.1.1 fd00::1:1 app=a, ports http=TCP/8080 dns=UDP/5353 (local)
//	x/b 10.0.1.2 fd00::1:2 app=b (local)
//	y/a 10.0.2.1 fd00::2:1 app=a, port http=TCP/9090 (remote)
//	y/c 10.0.2.3           app=c (local)
//	x/h 192.168.0.10       app=a hostNetwork (local)
//	x/n (no IP)            app=a (local)
func fixture(policies ...*networkingv1.NetworkPolicy) policy.Input {
	h := policytest.Pod("x", "h", policytest.Node, map[string]string{"app": "a"}, "192.168.0.10")
	h.HostNetwork = true
	return policy.Input{
		NodeName:   policytest.Node,
		Namespaces: []policy.Namespace{policytest.Namespace("x", map[string]string{"team": "x"}), policytest.Namespace("y", map[string]string{"team": "y"})},
		Pods: []policy.Pod{
			policytest.WithPorts(policytest.Pod("x", "a", policytest.Node, map[string]string{"app": "a"}, "10.0.1.1", "fd00::1:1"),
				policy.ContainerPort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080}, policy.ContainerPort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 5353}),
			policytest.Pod("x", "b", policytest.Node, map[string]string{"app": "b"}, "10.0.1.2", "fd00::1:2"),
			policytest.WithPorts(policytest.Pod("y", "a", "node-b", map[string]string{"app": "a"}, "10.0.2.1", "fd00::2:1"),
				policy.ContainerPort{Name: "http", Port: 9090}),
			policytest.Pod("y", "c", policytest.Node, map[string]string{"app": "c"}, "10.0.2.3"),
			h,
			policytest.Pod("x", "n", policytest.Node, map[string]string{"app": "a"}),
		},
		Policies: policies,
	}
}

const (
	xa, xa6 = "10.0.1.1", "fd00::1:1"
	xb, xb6 = "10.0.1.2", "fd00::1:2"
	ya, ya6 = "10.0.2.1", "fd00::2:1"
	yc      = "10.0.2.3"
	xh      = "192.168.0.10"
	ext     = "172.16.0.5"
	ext2    = "172.16.1.5"
)

type expect struct {
	p     policy.Packet
	allow bool
}

func allow(src, dst string, proto corev1.Protocol, p uint16) expect {
	return expect{policytest.Packet(src, dst, proto, p), true}
}

func deny(src, dst string, proto corev1.Protocol, p uint16) expect {
	return expect{policytest.Packet(src, dst, proto, p), false}
}

func TestComputeSemantics(t *testing.T) {
	aSel := policytest.Selecting(map[string]string{"app": "a"})
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		errors   []string // substrings of policy.State.Errors, in order
		checks   []expect
	}{
		{
			name: "no policy: everything open",
			checks: []expect{
				allow(ya, xa, tcpP, 80), allow(xa, ya, udpP, 53), allow(ext, xb6, sctpP, 1),
			},
		},
		{
			name:     "default deny ingress in x isolates x pods for ingress only",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "deny")},
			checks: []expect{
				deny(ya, xa, tcpP, 80), deny(yc, xb, udpP, 53), deny(ya6, xa6, tcpP, 80),
				allow(xa, ya, tcpP, 80), allow(xa, yc, tcpP, 80), allow(ya, yc, tcpP, 80),
			},
		},
		{
			name:     "podSelector peer selects pods of the policy namespace only",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.IngressRule(policytest.Peers(policytest.PodPeer(map[string]string{"app": "b"}))))},
			checks: []expect{
				allow(xb, xa, tcpP, 80), allow(xb6, xa6, udpP, 9), deny(ya, xa, tcpP, 80), deny(yc, xa, tcpP, 80),
				allow(ya, xb, tcpP, 80), // x/b not selected
			},
		},
		{
			name:     "namespaceSelector peer selects every pod of matching namespaces",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.IngressRule(policytest.Peers(policytest.NamespacePeer(map[string]string{"team": "y"}))))},
			checks:   []expect{allow(ya, xa, tcpP, 80), allow(yc, xa, tcpP, 80), allow(ya6, xa6, tcpP, 80), deny(xb, xa, tcpP, 80)},
		},
		{
			name:     "namespaceSelector and podSelector in one peer are ANDed",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.IngressRule(policytest.Peers(policytest.NamespacePodPeer(map[string]string{"team": "y"}, map[string]string{"app": "c"}))))},
			checks:   []expect{allow(yc, xa, tcpP, 80), deny(ya, xa, tcpP, 80), deny(xb, xa, tcpP, 80)},
		},
		{
			name:     "peers in a list are ORed",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.IngressRule(policytest.Peers(policytest.PodPeer(map[string]string{"app": "b"}), policytest.NamespacePodPeer(map[string]string{"team": "y"}, map[string]string{"app": "c"}))))},
			checks:   []expect{allow(yc, xa, tcpP, 80), allow(xb, xa, tcpP, 80), deny(ya, xa, tcpP, 80)},
		},
		{
			name: "empty namespaceSelector means all namespaces, empty podSelector all pods of the namespace",
			policies: []*networkingv1.NetworkPolicy{
				policytest.Policy("x", "p", aSel, policytest.IngressRule(policytest.Peers(policytest.NamespacePodPeer(map[string]string{}, map[string]string{"app": "c"})))),
				policytest.Policy("y", "q", policytest.Selecting(map[string]string{"app": "c"}), policytest.IngressRule(policytest.Peers(policytest.PodPeer(map[string]string{})))),
			},
			checks: []expect{allow(yc, xa, tcpP, 80), deny(xb, xa, tcpP, 80), allow(ya, yc, tcpP, 1), deny(xa, yc, tcpP, 1)},
		},
		{
			name:     "absent from allows every source; empty ingress list allows none",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.IngressRule(nil, policytest.TCP(80)))},
			checks:   []expect{allow(ext, xa, tcpP, 80), allow(ya6, xa6, tcpP, 80), deny(ext, xa, tcpP, 81)},
		},
		{
			name:     "ipBlock with except",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.IngressRule(policytest.Peers(policytest.BlockPeer("172.16.0.0/16", "172.16.0.0/24", "172.16.2.128/25"))))},
			checks: []expect{
				allow(ext2, xa, tcpP, 80), deny(ext, xa, tcpP, 80), deny("172.16.2.200", xa, tcpP, 80),
				allow("172.16.2.100", xa, tcpP, 80), deny("172.17.0.1", xa, tcpP, 80),
			},
		},
		{
			name:     "IPv6 ipBlock matches IPv6 only",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.IngressRule(policytest.Peers(policytest.BlockPeer("fd00::/16", "fd00::2:0/112"))))},
			checks:   []expect{allow(xb6, xa6, tcpP, 80), deny(ya6, xa6, tcpP, 80), deny(xb, xa, tcpP, 80)},
		},
		{
			name:     "numeric ports: protocol defaults to TCP",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.IngressRule(nil, policytest.TCP(80), policytest.Port(udpP, 53), policytest.Port(sctpP, 7)))},
			checks: []expect{
				allow(ya, xa, tcpP, 80), deny(ya, xa, tcpP, 81), deny(ya, xa, udpP, 80), allow(ya, xa, udpP, 53),
				allow(ya, xa, sctpP, 7), deny(ya, xa, sctpP, 80), deny(ya, xa, "ICMP", 0),
			},
		},
		{
			name:     "endPort ranges and protocol-only ports",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.IngressRule(nil, policytest.PortRange(tcpP, 8000, 8010), policytest.AllPortsOf(udpP)))},
			checks: []expect{
				allow(ya, xa, tcpP, 8000), allow(ya, xa, tcpP, 8010), deny(ya, xa, tcpP, 7999), deny(ya, xa, tcpP, 8011),
				allow(ya, xa, udpP, 1), allow(ya, xa, udpP, 65535), deny(ya, xa, sctpP, 1),
			},
		},
		{
			name: "named port ingress resolves against each target's container ports",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", policytest.Selecting(nil),
				policytest.IngressRule(nil, policytest.NamedPort(tcpP, "http"), policytest.NamedPort(udpP, "dns")))},
			checks: []expect{
				allow(ya, xa, tcpP, 8080), allow(ya6, xa6, tcpP, 8080), allow(ya, xa, udpP, 5353), deny(ya, xa, tcpP, 5353),
				deny(ya, xb, tcpP, 8080), deny(ya, xa, tcpP, 80),
			},
		},
		{
			name: "named port with the wrong protocol matches nothing",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel,
				policytest.IngressRule(nil, policytest.NamedPort(udpP, "http")))},
			checks: []expect{deny(ya, xa, udpP, 8080), deny(ya, xa, tcpP, 8080)},
		},
		{
			name: "named port egress resolves against destination pods",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", policytest.Selecting(map[string]string{"app": "b"}), policytest.Types(networkingv1.PolicyTypeEgress),
				policytest.EgressRule(policytest.Peers(policytest.NamespacePeer(map[string]string{}), policytest.BlockPeer("10.0.2.0/24")), policytest.NamedPort(tcpP, "http")))},
			checks: []expect{
				allow(xb, xa, tcpP, 8080), allow(xb6, xa6, tcpP, 8080), allow(xb, ya, tcpP, 9090), deny(xb, ya, tcpP, 8080),
				deny(xb, xa, tcpP, 9090), deny(xb, ext, tcpP, 8080), allow(ya, xb, tcpP, 1),
			},
		},
		{
			name:     "egress-only policy with no rules denies egress, leaves ingress open",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.Types(networkingv1.PolicyTypeEgress))},
			checks:   []expect{deny(xa, ya, tcpP, 80), deny(xa, ext, udpP, 53), allow(ya, xa, tcpP, 80), allow(xb, ya, tcpP, 80)},
		},
		{
			name: "policyTypes defaulting adds Egress when egress rules exist",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel,
				policytest.EgressRule(policytest.Peers(policytest.PodPeer(map[string]string{"app": "b"}))))},
			checks: []expect{allow(xa, xb, tcpP, 80), deny(xa, ya, tcpP, 80), deny(ya, xa, tcpP, 80)},
		},
		{
			name: "policyTypes Ingress only ignores egress rules",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel, policytest.Types(networkingv1.PolicyTypeIngress),
				policytest.EgressRule(policytest.Peers(policytest.PodPeer(map[string]string{"app": "b"}))))},
			checks: []expect{allow(xa, ya, tcpP, 80), deny(ya, xa, tcpP, 80)},
		},
		{
			name: "policies add up",
			policies: []*networkingv1.NetworkPolicy{
				policytest.Policy("x", "p1", aSel, policytest.IngressRule(policytest.Peers(policytest.PodPeer(map[string]string{"app": "b"})), policytest.TCP(80))),
				policytest.Policy("x", "p2", policytest.Selecting(nil), policytest.IngressRule(policytest.Peers(policytest.NamespacePeer(map[string]string{"team": "y"})), policytest.TCP(81))),
			},
			checks: []expect{
				allow(xb, xa, tcpP, 80), deny(xb, xa, tcpP, 81), allow(ya, xa, tcpP, 81), deny(ya, xa, tcpP, 80),
				allow(ya, xb, tcpP, 81), deny(ya, xb, tcpP, 80),
			},
		},
		{
			name:     "hostNetwork pods are neither targets nor selector peers",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", policytest.Selecting(nil), policytest.IngressRule(policytest.Peers(policytest.PodPeer(map[string]string{"app": "a"}))))},
			checks:   []expect{allow(ya, xh, tcpP, 80), deny(xh, xb, tcpP, 80), allow(xa, xb, tcpP, 80)},
		},
		{
			name:     "policy selecting only remote pods isolates nothing here",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("y", "p", aSel)},
			checks:   []expect{allow(xa, ya, tcpP, 80), allow(ext, ya, tcpP, 80)},
		},
		{
			name: "unparseable CIDR fails closed for that peer only",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel,
				policytest.IngressRule(policytest.Peers(policytest.BlockPeer("10.0.0.0/33"), policytest.PodPeer(map[string]string{"app": "b"}))))},
			errors: []string{"x/p: spec.ingress[0].from[0].ipBlock: cidr \"10.0.0.0/33\""},
			checks: []expect{allow(xb, xa, tcpP, 80), deny(ya, xa, tcpP, 80), deny(ext, xa, tcpP, 80)},
		},
		{
			name: "unparseable except fails closed for the whole block",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel,
				policytest.IngressRule(policytest.Peers(policytest.BlockPeer("0.0.0.0/0", "garbage"))))},
			errors: []string{"except \"garbage\""},
			checks: []expect{deny(ext, xa, tcpP, 80), deny(ya, xa, tcpP, 80)},
		},
		{
			name: "invalid podSelector isolates the whole namespace and allows nothing",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", func(p *networkingv1.NetworkPolicy) {
				p.Spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}
			}, policytest.IngressRule(nil))},
			errors: []string{"spec.podSelector"},
			checks: []expect{deny(ya, xa, tcpP, 80), deny(ya, xb, tcpP, 80), allow(ya, yc, tcpP, 80)},
		},
		{
			name: "invalid ports fail closed, valid ones still apply",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel,
				policytest.IngressRule(nil, policytest.TCP(0), policytest.Port("ICMP", 1), policytest.PortRange(tcpP, 90, 80)),
				policytest.IngressRule(nil, policytest.TCP(70000), policytest.TCP(443)))},
			errors: []string{"ports[0]: invalid port range", "ports[1].protocol", "ports[2]: invalid port range", "ports[0]: invalid port range"},
			checks: []expect{deny(ya, xa, tcpP, 0), deny(ya, xa, tcpP, 85), allow(ya, xa, tcpP, 443), deny(ya, xa, "ICMP", 0)},
		},
		{
			name: "matchExpressions selectors",
			policies: []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", func(p *networkingv1.NetworkPolicy) {
				p.Spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}}
			}, policytest.IngressRule(policytest.Peers(networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"x"}}}}})))},
			checks: []expect{allow(ya, xa, tcpP, 80), allow(yc, xb, tcpP, 80), deny(xb, xa, tcpP, 80)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := fixture(tc.policies...)
			st := policy.Compute(in)
			var got []string
			for _, e := range st.Errors {
				got = append(got, e.Error())
			}
			if len(got) != len(tc.errors) {
				t.Fatalf("errors = %q, want %d matching %q", got, len(tc.errors), tc.errors)
			}
			for i, want := range tc.errors {
				if !strings.Contains(got[i], want) {
					t.Errorf("error %d = %q, want it to contain %q", i, got[i], want)
				}
			}
			for _, c := range tc.checks {
				if g := st.Allows(c.p); g != c.allow {
					t.Errorf("%v: model allows=%v, want %v", c.p, g, c.allow)
				}
				if g := policytest.OracleAllows(in, c.p); g != c.allow {
					t.Errorf("%v: oracle allows=%v, want %v (test oracle disagrees with the table)", c.p, g, c.allow)
				}
			}
		})
	}
}

func TestComputeGroupsAndRanges(t *testing.T) {
	in := fixture(
		policytest.Policy("x", "p1", policytest.Selecting(map[string]string{"app": "a"}), policytest.IngressRule(policytest.Peers(policytest.PodPeer(map[string]string{"app": "b"}), policytest.BlockPeer("10.0.1.0/24", "10.0.1.0/31")))),
		policytest.Policy("x", "p2", policytest.Selecting(nil), policytest.Types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)),
		policytest.Policy("y", "p3", policytest.Selecting(nil)),
	)
	st := policy.Compute(in)
	wantIngress := []policy.Group{
		{Policies: []string{"x/p1", "x/p2"}, Pods: []string{"x/a"}, IPs: addrs(xa, xa6)},
		{Policies: []string{"x/p2"}, Pods: []string{"x/b"}, IPs: addrs(xb, xb6)},
		{Policies: []string{"y/p3"}, Pods: []string{"y/c"}, IPs: addrs(yc)},
	}
	if !reflect.DeepEqual(st.Ingress, wantIngress) {
		t.Errorf("ingress groups:\n got %+v\nwant %+v", st.Ingress, wantIngress)
	}
	wantEgress := []policy.Group{{Policies: []string{"x/p2"}, Pods: []string{"x/a", "x/b"}, IPs: addrs(xa, xb, xa6, xb6)}}
	if !reflect.DeepEqual(st.Egress, wantEgress) {
		t.Errorf("egress groups:\n got %+v\nwant %+v", st.Egress, wantEgress)
	}
	if len(st.Policies) != 3 || st.Policies[0].Key != "x/p1" {
		t.Fatalf("policies: %+v", st.Policies)
	}
	// x/b's 10.0.1.2 merges into the block 10.0.1.2-10.0.1.255; its IPv6
	// address stays a single address.
	wantRanges := []policy.IPRange{{netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.0.1.255")}, policy.AddrRange(netip.MustParseAddr(xb6))}
	if got := st.Policies[0].Ingress[0].Peers.Ranges; !reflect.DeepEqual(got, wantRanges) {
		t.Errorf("peer ranges = %v, want %v", got, wantRanges)
	}
	if st.Policies[0].Ingress[0].Peers.ID == "" {
		t.Error("peers of a from list must carry an ID")
	}
	// Peer IDs do not depend on pods: removing x/b keeps the ID.
	in2 := in
	in2.Pods = in.Pods[:1]
	st2 := policy.Compute(in2)
	if st2.Policies[0].Ingress[0].Peers.ID != st.Policies[0].Ingress[0].Peers.ID {
		t.Error("peer ID changed when a pod went away")
	}
	if !st.Policies[1].IngressIsolating || !st.Policies[1].EgressIsolating || st.Policies[2].EgressIsolating {
		t.Errorf("isolation flags wrong: %+v", st.Policies)
	}
}

func TestComputeIsDeterministic(t *testing.T) {
	pols := []*networkingv1.NetworkPolicy{
		policytest.Policy("x", "b", policytest.Selecting(nil), policytest.IngressRule(policytest.Peers(policytest.NamespacePeer(nil)), policytest.TCP(80), policytest.NamedPort(tcpP, "http"))),
		policytest.Policy("x", "a", policytest.Selecting(map[string]string{"app": "a"}), policytest.EgressRule(nil, policytest.TCP(53))),
	}
	in := fixture(pols...)
	first := policy.Compute(in)
	in.Policies = []*networkingv1.NetworkPolicy{pols[1], pols[0]}
	for i, j := 0, len(in.Pods)-1; i < j; i, j = i+1, j-1 {
		in.Pods[i], in.Pods[j] = in.Pods[j], in.Pods[i]
	}
	if second := policy.Compute(in); !reflect.DeepEqual(first, second) {
		t.Errorf("policy.Compute depends on input order:\n%+v\n%+v", first, second)
	}
}

func TestSharedIPGoesToOneGroup(t *testing.T) {
	in := fixture(policytest.Policy("x", "p", policytest.Selecting(map[string]string{"app": "a"})), policytest.Policy("x", "q", policytest.Selecting(map[string]string{"app": "b"})))
	in.Pods = append(in.Pods, policytest.Pod("x", "reuse", policytest.Node, map[string]string{"app": "b"}, xa))
	st := policy.Compute(in)
	n := 0
	for _, g := range st.Ingress {
		for _, ip := range g.IPs {
			if ip == netip.MustParseAddr(xa) {
				n++
			}
		}
	}
	if n != 1 {
		t.Errorf("%s is in %d groups, want 1", xa, n)
	}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// TestModelAgreesWithOracle generates random clusters and policies and
// checks that the model decides random packets as the oracle does.
func TestModelAgreesWithOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		in := policytest.RandomInput(r)
		st := policy.Compute(in)
		var ips []netip.Addr
		for _, p := range in.Pods {
			ips = append(ips, p.IPs...)
		}
		ips = append(ips, addrs("172.16.0.1", "172.16.9.9", "10.0.255.1", "fd00:ff::1", "192.168.0.10")...)
		for range 200 {
			p := policy.Packet{
				Src:      ips[r.IntN(len(ips))],
				Dst:      ips[r.IntN(len(ips))],
				Protocol: []corev1.Protocol{tcpP, udpP, sctpP, "ICMP"}[r.IntN(4)],
				Port:     []uint16{0, 53, 80, 81, 443, 5353, 8080, 9090}[r.IntN(8)],
			}
			if p.Src.Is4() != p.Dst.Is4() {
				continue
			}
			if got, want := st.Allows(p), policytest.OracleAllows(in, p); got != want {
				t.Fatalf("round %d: %+v: model %v, oracle %v\npolicies: %s\naudit: %s", round, p, got, want, policytest.Describe(in.Policies), policytest.Describe(in.AuditPolicies))
			}
			if got, want := st.Decide(p), policytest.OracleDecide(in, p); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: %+v: model decides %+v, oracle %+v\npolicies: %s\naudit: %s", round, p, got, want, policytest.Describe(in.Policies), policytest.Describe(in.AuditPolicies))
			}
		}
	}
}
