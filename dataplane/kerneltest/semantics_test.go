package kerneltest

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

const (
	yes = true
	no  = false
)

var (
	ingress = networkingv1.PolicyTypeIngress
	egress  = networkingv1.PolicyTypeEgress
	sctpP   = corev1.ProtocolSCTP
	udpP    = corev1.ProtocolUDP
	tcpP    = corev1.ProtocolTCP
)

func app(v string) map[string]string { return map[string]string{"app": v} }

func expr(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func selectingExpr(sel *metav1.LabelSelector) func(*networkingv1.NetworkPolicy) {
	return func(p *networkingv1.NetworkPolicy) { p.Spec.PodSelector = *sel }
}

// all returns the probe over both families.
func all(ps ...probe) []probe {
	var out []probe
	for _, p := range ps {
		out = append(out, p, p.six())
	}
	return out
}

func join(lists ...[]probe) []probe {
	var out []probe
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

type semanticsCase struct {
	name     string
	policies []*networkingv1.NetworkPolicy
	probes   []probe
}

// semanticsCases cover every NetworkPolicy bullet of the agent's contract.
// Pods: x/a (app=a; http=TCP 80, dns=UDP 53, assoc=SCTP 90), x/b (app=b;
// http=TCP 8080, dns=UDP 5353), x/c, y/b, y/d, z/e (inside the except
// ranges), all on node-a, and y/r on node-b. Namespaces: x (team=x,
// env=prod), y (team=y, env=dev), z (team=z).
var semanticsCases = []semanticsCase{{
	name: "no policy: everything open",
	probes: join(all(tcp("y/d", "x/a", 80, yes), udp("y/d", "x/a", 53, yes), sctp("y/d", "x/a", 90, yes),
		tcp("x/a", "y/d", 80, yes), tcp("y/r", "x/a", 80, yes), tcp("x/a", "y/r", 80, yes), tcp("x/a", "node", 80, yes))),
}, {
	name:     "deny all ingress in a namespace; egress and other namespaces stay open; node reaches its pods",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "deny", pt.Types(ingress))},
	probes: join(all(
		tcp("y/d", "x/a", 80, no), udp("y/d", "x/a", 53, no), sctp("y/d", "x/a", 90, no),
		tcp("x/b", "x/a", 80, no), tcp("y/r", "x/a", 80, no), udp("y/r", "x/a", 53, no),
		tcp("x/a", "y/d", 80, yes), udp("x/a", "y/d", 53, yes), sctp("x/a", "y/d", 90, yes), tcp("x/a", "y/r", 80, yes),
		tcp("y/d", "z/e", 80, yes), tcp("node", "x/a", 80, yes), udp("node", "x/b", 53, yes))),
}, {
	name: "policyTypes defaults to Ingress plus Egress when egress rules exist",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "eg", pt.Selecting(app("a")),
		pt.EgressRule(pt.Peers(pt.PodPeer(app("b")))))},
	probes: join(all(tcp("y/d", "x/a", 80, no), tcp("x/a", "x/b", 8080, yes), udp("x/a", "x/b", 5353, yes),
		sctp("x/a", "x/b", 91, yes), tcp("x/a", "x/c", 80, no), tcp("x/a", "y/b", 80, no), tcp("x/b", "x/c", 80, yes))),
}, {
	name: "policyTypes Egress only leaves ingress open",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "eg", pt.Selecting(app("a")), pt.Types(egress),
		pt.EgressRule(pt.Peers(pt.PodPeer(app("b")))))},
	probes: join(all(tcp("y/d", "x/a", 80, yes), udp("y/d", "x/a", 53, yes), tcp("x/a", "x/b", 8080, yes), tcp("x/a", "x/c", 80, no))),
}, {
	name: "pod selector matchLabels selects pods of the policy's namespace only",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "from-b", pt.Selecting(app("a")),
		pt.IngressRule(pt.Peers(pt.PodPeer(app("b")))))},
	probes: join(all(tcp("x/b", "x/a", 80, yes), udp("x/b", "x/a", 53, yes), sctp("x/b", "x/a", 90, yes),
		tcp("y/b", "x/a", 80, no), tcp("x/c", "x/a", 80, no), tcp("x/c", "x/b", 8080, yes))),
}, {
	name: "namespace selector matchLabels selects every pod of matching namespaces, remote ones too",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "from-y", pt.Selecting(app("a")),
		pt.IngressRule(pt.Peers(pt.NamespacePeer(map[string]string{"team": "y"}))))},
	probes: join(all(tcp("y/b", "x/a", 80, yes), tcp("y/d", "x/a", 80, yes), udp("y/d", "x/a", 53, yes), sctp("y/d", "x/a", 90, yes),
		tcp("y/r", "x/a", 80, yes), tcp("x/b", "x/a", 80, no), tcp("z/e", "x/a", 80, no))),
}, {
	name: "namespace and pod selector in one peer must both match",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "from-y-d", pt.Selecting(app("a")),
		pt.IngressRule(pt.Peers(pt.NamespacePodPeer(map[string]string{"team": "y"}, app("d")))))},
	probes: join(all(tcp("y/d", "x/a", 80, yes), tcp("y/b", "x/a", 80, no), tcp("y/r", "x/a", 80, no), tcp("x/b", "x/a", 80, no))),
}, {
	name: "matchExpressions In and Exists",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "expr", selectingExpr(expr("app", metav1.LabelSelectorOpIn, "a", "b")),
		pt.IngressRule([]networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: expr("env", metav1.LabelSelectorOpExists),
			PodSelector:       expr("app", metav1.LabelSelectorOpIn, "b", "d"),
		}}))},
	probes: join(all(tcp("x/b", "x/a", 80, yes), tcp("y/d", "x/a", 80, yes), tcp("y/b", "x/a", 80, yes), tcp("x/c", "x/a", 80, no),
		tcp("z/e", "x/a", 80, no), tcp("y/d", "x/b", 8080, yes), tcp("x/c", "x/b", 8080, no), tcp("x/c", "y/d", 80, yes))),
}, {
	name: "matchExpressions NotIn and DoesNotExist",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "expr", pt.Selecting(app("a")),
		pt.IngressRule([]networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: expr("env", metav1.LabelSelectorOpDoesNotExist)},
			{NamespaceSelector: expr("env", metav1.LabelSelectorOpNotIn, "prod"), PodSelector: expr("app", metav1.LabelSelectorOpNotIn, "b")},
		}))},
	probes: join(all(tcp("z/e", "x/a", 80, yes), tcp("y/d", "x/a", 80, yes), tcp("y/r", "x/a", 80, yes),
		tcp("y/b", "x/a", 80, no), tcp("x/b", "x/a", 80, no), tcp("x/c", "x/a", 80, no))),
}, {
	name: "empty pod selector in a peer: every pod of the policy's namespace",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "same-ns", pt.Selecting(app("a")),
		pt.IngressRule(pt.Peers(pt.PodPeer(nil))))},
	probes: join(all(tcp("x/b", "x/a", 80, yes), tcp("x/c", "x/a", 80, yes), tcp("y/d", "x/a", 80, no), tcp("y/r", "x/a", 80, no))),
}, {
	name: "empty namespace selector: every pod of every namespace, but no other address",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "all-pods", pt.Selecting(app("a")), pt.Types(ingress, egress),
		pt.IngressRule(pt.Peers(pt.NamespacePeer(nil))), pt.EgressRule(pt.Peers(pt.NamespacePeer(nil))))},
	probes: join(all(tcp("y/d", "x/a", 80, yes), tcp("z/e", "x/a", 80, yes), tcp("y/r", "x/a", 80, yes), tcp("x/b", "x/a", 80, yes),
		tcp("x/a", "y/r", 80, yes), tcp("x/a", "node", 80, no))),
}, {
	name: "empty from list allows everyone; an empty pod selector selects the whole namespace",
	policies: []*networkingv1.NetworkPolicy{
		pt.Policy("x", "deny"),
		pt.Policy("x", "open-a", pt.Selecting(app("a")), pt.IngressRule(nil)),
	},
	probes: join(all(tcp("y/d", "x/a", 80, yes), udp("y/r", "x/a", 5353, yes), sctp("z/e", "x/a", 91, yes),
		tcp("y/d", "x/b", 8080, no), tcp("x/a", "x/c", 80, no))),
}, {
	name: "ipBlock with except, both families",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "block", pt.Selecting(app("a")),
		pt.IngressRule(pt.Peers(pt.BlockPeer("10.100.1.0/24", "10.100.1.64/26"), pt.BlockPeer("fd00:100:0:1::/64", "fd00:100:0:1::40/122"))))},
	probes: join(all(tcp("x/b", "x/a", 80, yes), tcp("y/d", "x/a", 80, yes), udp("y/d", "x/a", 53, yes),
		tcp("z/e", "x/a", 80, no), udp("z/e", "x/a", 53, no), tcp("y/r", "x/a", 80, no))),
}, {
	name: "ipBlock matches remote pods by address, ingress and egress",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "remote", pt.Selecting(app("a")), pt.Types(ingress, egress),
		pt.IngressRule(pt.Peers(pt.BlockPeer("10.100.2.0/24"), pt.BlockPeer("fd00:100:0:2::/64"))),
		pt.EgressRule(pt.Peers(pt.BlockPeer("10.100.2.0/24"), pt.BlockPeer("fd00:100:0:2::/64"))))},
	probes: join(all(tcp("y/r", "x/a", 80, yes), tcp("x/a", "y/r", 80, yes), udp("x/a", "y/r", 53, yes),
		tcp("y/d", "x/a", 80, no), tcp("x/a", "y/d", 80, no))),
}, {
	name: "remote peer behind another node matched by selectors, ingress and egress",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "remote", pt.Selecting(app("a")), pt.Types(ingress, egress),
		pt.IngressRule(pt.Peers(pt.NamespacePodPeer(map[string]string{"team": "y"}, app("r")))),
		pt.EgressRule(pt.Peers(pt.NamespacePodPeer(map[string]string{"team": "y"}, app("r")))))},
	probes: join(all(tcp("y/r", "x/a", 80, yes), udp("y/r", "x/a", 53, yes), sctp("y/r", "x/a", 90, yes),
		tcp("x/a", "y/r", 8080, yes), sctp("x/a", "y/r", 91, yes),
		tcp("y/d", "x/a", 80, no), tcp("x/a", "y/d", 80, no))),
}, {
	name: "ports by number, per protocol: TCP, UDP and SCTP",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "ports", pt.Selecting(app("a")),
		pt.IngressRule(nil, pt.TCP(80), pt.Port(udpP, 53), pt.Port(sctpP, 90)))},
	probes: join(all(tcp("y/d", "x/a", 80, yes), tcp("y/d", "x/a", 81, no), udp("y/d", "x/a", 53, yes), udp("y/d", "x/a", 5353, no),
		sctp("y/d", "x/a", 90, yes), sctp("y/d", "x/a", 91, no), tcp("y/r", "x/a", 80, yes), tcp("y/r", "x/a", 9000, no))),
}, {
	name: "named ports resolve per target pod",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "named", selectingExpr(expr("app", metav1.LabelSelectorOpIn, "a", "b")),
		pt.IngressRule(nil, pt.NamedPort(tcpP, "http"), pt.NamedPort(udpP, "dns"), pt.NamedPort(sctpP, "assoc")))},
	probes: join(all(tcp("y/d", "x/a", 80, yes), tcp("y/d", "x/a", 8080, no), udp("y/d", "x/a", 53, yes), udp("y/d", "x/a", 5353, no),
		sctp("y/d", "x/a", 90, yes), sctp("y/d", "x/a", 91, no),
		tcp("y/d", "x/b", 8080, yes), tcp("y/d", "x/b", 80, no), udp("y/d", "x/b", 5353, yes), udp("y/d", "x/b", 53, no),
		sctp("y/d", "x/b", 90, no))),
}, {
	name: "egress named ports resolve per destination pod",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "named-out", pt.Selecting(app("c")), pt.Types(egress),
		pt.EgressRule(nil, pt.NamedPort(tcpP, "http")))},
	probes: join(all(tcp("x/c", "x/a", 80, yes), tcp("x/c", "x/a", 8080, no), tcp("x/c", "x/b", 8080, yes), tcp("x/c", "x/b", 80, no),
		tcp("x/c", "y/d", 80, no), udp("x/c", "x/a", 53, no))),
}, {
	name: "endPort ranges",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "range", pt.Selecting(app("a")),
		pt.IngressRule(nil, pt.PortRange(tcpP, 8000, 8081), pt.PortRange(udpP, 5000, 6000), pt.PortRange(sctpP, 91, 95)))},
	probes: join(all(tcp("y/d", "x/a", 8080, yes), tcp("y/d", "x/a", 8081, yes), tcp("y/d", "x/a", 80, no), tcp("y/d", "x/a", 9000, no),
		udp("y/d", "x/a", 5353, yes), udp("y/d", "x/a", 53, no), sctp("y/d", "x/a", 91, yes), sctp("y/d", "x/a", 90, no))),
}, {
	name: "a protocol without a port allows all its ports and nothing else",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "proto", pt.Selecting(app("a")),
		pt.IngressRule(nil, pt.AllPortsOf(udpP), pt.AllPortsOf(sctpP)))},
	probes: join(all(udp("y/d", "x/a", 53, yes), udp("y/d", "x/a", 5353, yes), sctp("y/d", "x/a", 90, yes), sctp("y/d", "x/a", 91, yes),
		tcp("y/d", "x/a", 80, no))),
}, {
	name: "several policies selecting one pod add up",
	policies: []*networkingv1.NetworkPolicy{
		pt.Policy("x", "b-80", pt.Selecting(app("a")), pt.IngressRule(pt.Peers(pt.PodPeer(app("b"))), pt.TCP(80))),
		pt.Policy("x", "c-81", pt.Selecting(app("a")), pt.IngressRule(pt.Peers(pt.PodPeer(app("c"))), pt.TCP(81))),
	},
	probes: join(all(tcp("x/b", "x/a", 80, yes), tcp("x/b", "x/a", 81, no), tcp("x/c", "x/a", 81, yes), tcp("x/c", "x/a", 80, no),
		tcp("y/d", "x/a", 80, no))),
}, {
	name: "a pod selected by no policy in a direction is open in it",
	policies: []*networkingv1.NetworkPolicy{
		pt.Policy("x", "in-a", pt.Selecting(app("a")), pt.Types(ingress)),
		pt.Policy("x", "out-b", pt.Selecting(app("b")), pt.Types(egress)),
	},
	probes: join(all(tcp("y/d", "x/a", 80, no), tcp("x/a", "y/d", 80, yes), tcp("y/d", "x/b", 8080, yes),
		tcp("x/b", "y/d", 80, no), tcp("y/d", "x/c", 80, yes), tcp("x/c", "y/d", 80, yes))),
}, {
	name:     "egress deny all, to pods and to the node; inbound connections and their replies still pass",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "no-out", pt.Selecting(app("a")), pt.Types(egress))},
	probes: join(all(tcp("x/a", "y/d", 80, no), udp("x/a", "y/d", 53, no), sctp("x/a", "y/d", 90, no), tcp("x/a", "y/r", 80, no),
		tcp("x/a", "node", 80, no), tcp("y/d", "x/a", 80, yes), udp("y/d", "x/a", 53, yes), tcp("node", "x/a", 80, yes))),
}, {
	name: "egress to the node's address by ipBlock",
	policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "to-node", pt.Selecting(app("a")), pt.Types(egress),
		pt.EgressRule(pt.Peers(pt.BlockPeer("10.100.0.1/32"), pt.BlockPeer("fd00:100::1/128")), pt.TCP(80)))},
	probes: join(all(tcp("x/a", "node", 80, yes), tcp("x/a", "y/d", 80, no))),
}, {
	name: "replies of allowed connections pass while both ends are isolated both ways",
	policies: []*networkingv1.NetworkPolicy{
		pt.Policy("x", "a", pt.Selecting(app("a")), pt.Types(ingress, egress), pt.EgressRule(pt.Peers(pt.PodPeer(app("b"))))),
		pt.Policy("x", "b", pt.Selecting(app("b")), pt.Types(ingress, egress), pt.IngressRule(pt.Peers(pt.PodPeer(app("a"))))),
	},
	probes: join(all(tcp("x/a", "x/b", 8080, yes), udp("x/a", "x/b", 5353, yes), sctp("x/a", "x/b", 90, yes),
		tcp("x/b", "x/a", 80, no), udp("x/b", "x/a", 53, no), tcp("x/c", "x/b", 8080, no))),
}, {
	name: "deny all both ways everywhere: only the node reaches its pods",
	policies: []*networkingv1.NetworkPolicy{
		pt.Policy("x", "deny", pt.Types(ingress, egress)),
		pt.Policy("y", "deny", pt.Types(ingress, egress)),
		pt.Policy("z", "deny", pt.Types(ingress, egress)),
	},
	probes: join(all(tcp("x/a", "x/b", 8080, no), tcp("y/d", "x/a", 80, no), udp("y/d", "z/e", 53, no), sctp("x/b", "y/b", 90, no),
		tcp("y/r", "x/a", 80, no), tcp("x/a", "y/r", 80, no), tcp("x/a", "node", 80, no),
		tcp("node", "x/a", 80, yes), udp("node", "y/d", 53, yes), tcp("node", "z/e", 9000, yes))),
}}

// TestSemantics programs each case's policies with each backend and probes
// real connections. The namespaces and servers are built once per backend;
// each case is one more sync of the same backend (after the first, the
// incremental path of nftables).
func TestSemantics(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			c := newCluster(t)
			b := bk.new(t, c.a.NS)
			for _, tc := range semanticsCases {
				t.Run(tc.name, func(t *testing.T) {
					in := syncPolicies(t, c, b, tc.policies)
					checkOracle(t, c, in, tc.probes)
					c.forget(t)
					for _, m := range c.mismatches(tc.probes) {
						t.Error(m)
					}
				})
			}
			t.Run("ct state invalid dropped for policed pods", func(t *testing.T) { checkInvalidDropped(t, c, b) })
		})
	}
}

// checkOracle keeps the hand-written expectations honest: each must agree
// with policytest.OracleAllows, which reads the API objects directly. The
// node's own traffic to its pods is outside the oracle (it is exempt: the
// output hook is not filtered), so such probes must expect a pass.
func checkOracle(t *testing.T, c *cluster, in policy.Input, probes []probe) {
	t.Helper()
	for _, p := range probes {
		if p.from == "node" {
			if !p.want {
				t.Errorf("%s: the node always reaches its pods", p)
			}
			continue
		}
		pkt := policy.Packet{Src: c.addr(p.from, p.v6), Dst: c.addr(p.to, p.v6), Protocol: p.proto, Port: uint16(p.port)}
		if got := pt.OracleAllows(in, pkt); got != p.want {
			t.Errorf("expectation disagrees with the oracle: %s, oracle allows=%v", p, got)
		}
	}
}
