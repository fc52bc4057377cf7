//go:build e2e

package e2e

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/internal/localcluster"
)

// TestNetworkPolicy runs the conformance scenarios on every backend. They are
// modelled on the upstream network-policy e2e tests (test/e2e/network/netpol
// in kubernetes/kubernetes), written afresh for our layout: each one applies
// policies and waits until the full probe matrix (9 pods x 9 pods x TCP, UDP
// and SCTP on 80 and 81) equals the expected truth table.
func TestNetworkPolicy(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			e := clusterFor(t, backend)
			for _, s := range netpolScenarios {
				e.scenario(t, s.name, func(t *testing.T) { s.run(t, e) })
			}
		})
	}
}

type scenarioCase struct {
	name string
	run  func(t *testing.T, e *env)
}

// toXA is "the target is x/a".
func toXA(to *pod) bool { return is(to, "x/a") }

// onlyToXA is a rule where only traffic to x/a is restricted, to allow(from, port).
func onlyToXA(allow func(from *pod, p pport) bool) func(from, to *pod, p pport) bool {
	return func(from, to *pod, p pport) bool { return !toXA(to) || allow(from, p) }
}

// onlyFromXA restricts only traffic from x/a.
func onlyFromXA(allow func(to *pod, p pport) bool) func(from, to *pod, p pport) bool {
	return func(from, to *pod, p pport) bool { return !is(from, "x/a") || allow(to, p) }
}

func nsOf(p *pod, names ...string) bool {
	for _, n := range names {
		if p.Namespace == n {
			return true
		}
	}
	return false
}

var (
	podA = labels("pod", "a")
	all  = map[string]string{}
)

var netpolScenarios = []scenarioCase{
	{"default-deny-ingress", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "deny-ingress", all, ingressOnly, nil, nil))
		e.expect(t, false, func(from, to *pod, p pport) bool { return to.Namespace != "x" })
	}},
	{"default-deny-egress", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "deny-egress", all, egressOnly, nil, nil))
		e.expect(t, false, func(from, to *pod, p pport) bool { return from.Namespace != "x" })
	}},
	{"default-deny-all", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "deny-all", all, bothTypes, nil, nil))
		e.expect(t, false, func(from, to *pod, p pport) bool { return from.Namespace != "x" && to.Namespace != "x" })
	}},
	{"default-deny-ingress-in-every-namespace", func(t *testing.T, e *env) {
		for _, ns := range localcluster.LayoutNamespaces {
			e.apply(t, netpol(ns, "deny-ingress", all, ingressOnly, nil, nil))
		}
		e.expect(t, false, func(from, to *pod, p pport) bool { return false })
	}},
	{"policy-types-defaulted-to-ingress", func(t *testing.T, e *env) {
		// No policyTypes and no egress rules: the API defaults to Ingress only.
		e.apply(t, netpol("x", "implicit-ingress", podA, nil, nil, nil))
		e.expect(t, false, onlyToXA(func(*pod, pport) bool { return false }))
	}},
	{"allow-from-pod-in-same-namespace", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "allow-b", podA, ingressOnly, []netIn{in(nil, peerPod(sel("pod", "b")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "x/b") }))
	}},
	{"allow-from-all-namespaces-on-top-of-deny", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "deny-ingress", all, ingressOnly, nil, nil),
			netpol("x", "allow-a-from-all", podA, ingressOnly, []netIn{in(nil, peerNs(sel()))}, nil))
		e.expect(t, false, func(from, to *pod, p pport) bool { return to.Namespace != "x" || toXA(to) })
	}},
	{"allow-from-namespace", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "allow-y", podA, ingressOnly, []netIn{in(nil, peerNs(sel("ns", "y")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Namespace == "y" }))
	}},
	{"allow-from-namespace-by-default-label", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "allow-y", podA, ingressOnly, []netIn{in(nil, peerNs(sel("kubernetes.io/metadata.name", "y")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Namespace == "y" }))
	}},
	{"pod-selector-match-expressions", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "allow-in-b", podA, ingressOnly, []netIn{in(nil, peerPod(expr("pod", metav1.LabelSelectorOpIn, "b")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "x/b") }))
	}},
	{"namespace-selector-match-expressions", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "allow-not-x", podA, ingressOnly, []netIn{in(nil, peerNs(expr("ns", metav1.LabelSelectorOpNotIn, "x")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Namespace != "x" }))
	}},
	{"namespace-selector-match-expressions-default-label", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "allow-z", podA, ingressOnly, []netIn{in(nil, peerNs(expr("kubernetes.io/metadata.name", metav1.LabelSelectorOpIn, "z")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Namespace == "z" }))
	}},
	{"match-expressions-exists-and-does-not-exist", func(t *testing.T, e *env) {
		// Pods with a "pod" label, in namespaces without a "skip" label.
		e.setLabels(t, "ns", "z", map[string]string{"ns": "z", "skip": "yes"})
		e.apply(t, netpol("x", "exists", podA, ingressOnly, []netIn{in(nil,
			peerPodNs(expr("pod", metav1.LabelSelectorOpExists), expr("skip", metav1.LabelSelectorOpDoesNotExist)))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Namespace != "z" }))
	}},
	{"pod-or-namespace-selector", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "or", podA, ingressOnly, []netIn{in(nil, peerPod(sel("pod", "b")), peerNs(sel("ns", "y")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "x/b") || from.Namespace == "y" }))
	}},
	{"pod-and-namespace-selector", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "and", podA, ingressOnly, []netIn{in(nil, peerPodNs(sel("pod", "b"), sel("ns", "y")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "y/b") }))
	}},
	{"multiple-pod-and-namespace-selectors", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "multi", podA, ingressOnly, []netIn{in(nil,
			peerPodNs(expr("pod", metav1.LabelSelectorOpIn, "b", "c"), expr("ns", metav1.LabelSelectorOpIn, "y", "z")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool {
			return nsOf(from, "y", "z") && (from.Name == "b" || from.Name == "c")
		}))
	}},
	{"any-pod-selector-means-own-namespace", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "any-pod", podA, ingressOnly, []netIn{in(nil, peerPod(sel()))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Namespace == "x" }))
	}},
	{"deny-ingress-from-other-namespaces", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "same-ns", all, ingressOnly, []netIn{in(nil, peerPod(sel()))}, nil))
		e.expect(t, false, func(from, to *pod, _ pport) bool { return to.Namespace != "x" || from.Namespace == "x" })
	}},
	{"ports", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "tcp-81", podA, ingressOnly, []netIn{in(ports(port(tcp, 81)))}, nil))
		e.expect(t, false, onlyToXA(func(_ *pod, p pport) bool { return p == pport{Port: 81, Protocol: tcp} }))
	}},
	{"stacked-policies-add-up", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "tcp-80-from-y", podA, ingressOnly, []netIn{in(ports(port(tcp, 80)), peerNs(sel("ns", "y")))}, nil),
			netpol("x", "tcp-81-from-z", podA, ingressOnly, []netIn{in(ports(port(tcp, 81)), peerNs(sel("ns", "z")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool {
			return p.Protocol == tcp && (from.Namespace == "y" && p.Port == 80 || from.Namespace == "z" && p.Port == 81)
		}))
	}},
	{"allow-all-on-top-of-deny", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "deny-ingress", all, ingressOnly, nil, nil))
		e.expect(t, false, func(_, to *pod, _ pport) bool { return to.Namespace != "x" })
		e.apply(t, netpol("x", "allow-all", all, ingressOnly, []netIn{{}}, nil))
		e.expect(t, false, allowAll)
	}},
	{"named-port-ingress", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "named", podA, ingressOnly, []netIn{in(ports(namedPort(tcp, "serve-81-tcp")))}, nil))
		e.expect(t, false, onlyToXA(func(_ *pod, p pport) bool { return p == pport{Port: 81, Protocol: tcp} }))
	}},
	{"named-port-ingress-from-namespace", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "named-from-y", podA, ingressOnly, []netIn{in(ports(namedPort(tcp, "serve-80-tcp")), peerNs(sel("ns", "y")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool {
			return from.Namespace == "y" && p == pport{Port: 80, Protocol: tcp}
		}))
	}},
	{"named-port-udp", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "named-udp", podA, ingressOnly, []netIn{in(ports(namedPort(udp, "serve-81-udp")))}, nil))
		e.expect(t, false, onlyToXA(func(_ *pod, p pport) bool { return p == pport{Port: 81, Protocol: udp} }))
	}},
	{"named-port-egress", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "named-egress", podA, egressOnly, nil, []netOut{out(ports(namedPort(tcp, "serve-81-tcp")))}))
		e.expect(t, false, onlyFromXA(func(_ *pod, p pport) bool { return p == pport{Port: 81, Protocol: tcp} }))
	}},
	{"end-port-ingress", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "range", podA, ingressOnly, []netIn{in(ports(portRange(tcp, 79, 81)), peerNs(sel("ns", "y")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool { return from.Namespace == "y" && p.Protocol == tcp }))
	}},
	{"end-port-egress", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "range", podA, egressOnly, nil, []netOut{out(ports(portRange(tcp, 81, 90), portRange(udp, 70, 80)))}))
		e.expect(t, false, onlyFromXA(func(_ *pod, p pport) bool {
			return p == pport{Port: 81, Protocol: tcp} || p == pport{Port: 80, Protocol: udp}
		}))
	}},
	{"updated-policy", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "allow", podA, ingressOnly, []netIn{in(nil, peerPod(sel("pod", "b")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "x/b") }))
		e.apply(t, netpol("x", "allow", podA, ingressOnly, []netIn{in(nil, peerPod(sel("pod", "c")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "x/c") }))
	}},
	{"ingress-from-updated-namespace", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "allow-ns2", podA, ingressOnly, []netIn{in(nil, peerNs(sel("ns2", "updated")))}, nil))
		e.expect(t, false, onlyToXA(func(*pod, pport) bool { return false }))
		e.setLabels(t, "ns", "y", map[string]string{"ns": "y", "ns2": "updated"})
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Namespace == "y" }))
	}},
	{"ingress-from-updated-pod", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "allow-pod2", podA, ingressOnly, []netIn{in(nil, peerPod(sel("pod2", "updated")))}, nil))
		e.expect(t, false, onlyToXA(func(*pod, pport) bool { return false }))
		e.setLabels(t, "x", "b", map[string]string{"pod": "b", "pod2": "updated"})
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "x/b") }))
	}},
	{"deny-ingress-to-updated-pod", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "isolate", labels("target", "isolated"), ingressOnly, nil, nil))
		e.expect(t, false, allowAll)
		e.setLabels(t, "x", "a", map[string]string{"pod": "a", "target": "isolated"})
		e.expect(t, false, onlyToXA(func(*pod, pport) bool { return false }))
	}},
	{"deny-egress-by-pod-selector", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "deny-a", podA, egressOnly, nil, nil))
		e.expect(t, false, onlyFromXA(func(*pod, pport) bool { return false }))
	}},
	{"egress-and-ingress-together", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "both", podA, bothTypes,
			[]netIn{in(nil, peerPod(sel("pod", "b")))},
			[]netOut{out(ports(port(tcp, 80)), peerNs(sel("ns", "y")))}))
		e.expect(t, false, func(from, to *pod, p pport) bool {
			if toXA(to) && !is(from, "x/b") {
				return false
			}
			if is(from, "x/a") {
				// Replies of x/b's connections are not new egress.
				return to.Namespace == "y" && p == pport{Port: 80, Protocol: tcp}
			}
			return true
		})
	}},
	{"deny-egress-wins-over-server-allow", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "deny-egress-a", podA, egressOnly, nil, nil),
			netpol("y", "allow-from-xa", all, ingressOnly, []netIn{in(nil, peerPodNs(sel("pod", "a"), sel("ns", "x")))}, nil))
		// y admits only x/a, and x/a may not send: nobody reaches y.
		e.expect(t, false, func(from, to *pod, _ pport) bool { return !is(from, "x/a") && to.Namespace != "y" })
	}},
	{"egress-to-pod-in-other-namespace", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "to-ya", podA, egressOnly, nil, []netOut{out(nil, peerPodNs(sel("pod", "a"), sel("ns", "y")))}))
		e.expect(t, false, onlyFromXA(func(to *pod, _ pport) bool { return is(to, "y/a") }))
	}},
	{"ingress-any-port-one-protocol", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "udp-only", podA, ingressOnly, []netIn{in(ports(anyPort(udp)))}, nil))
		e.expect(t, false, onlyToXA(func(_ *pod, p pport) bool { return p.Protocol == udp }))
	}},
	{"ingress-allow-all-takes-precedence", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "tcp-80-from-b", podA, ingressOnly, []netIn{in(ports(port(tcp, 80)), peerPod(sel("pod", "b")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool { return is(from, "x/b") && p == pport{Port: 80, Protocol: tcp} }))
		e.apply(t, netpol("x", "allow-all", podA, ingressOnly, []netIn{{}}, nil))
		e.expect(t, false, allowAll)
	}},
	{"egress-allow-all-takes-precedence", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "tcp-80-to-b", podA, egressOnly, nil, []netOut{out(ports(port(tcp, 80)), peerPod(sel("pod", "b")))}))
		e.expect(t, false, onlyFromXA(func(to *pod, p pport) bool { return is(to, "x/b") && p == pport{Port: 80, Protocol: tcp} }))
		e.apply(t, netpol("x", "allow-all", podA, egressOnly, nil, []netOut{{}}))
		e.expect(t, false, allowAll)
	}},
	{"policy-deleted-stops-enforcing", func(t *testing.T, e *env) {
		deny := netpol("x", "deny-all", all, bothTypes, nil, nil)
		e.apply(t, deny)
		e.expect(t, false, func(from, to *pod, _ pport) bool { return from.Namespace != "x" && to.Namespace != "x" })
		e.delete(t, deny)
		e.expect(t, false, allowAll)
	}},
	{"one-of-two-policies-deleted", func(t *testing.T, e *env) {
		fromY := netpol("x", "from-y", podA, ingressOnly, []netIn{in(nil, peerNs(sel("ns", "y")))}, nil)
		e.apply(t, fromY, netpol("x", "from-z", podA, ingressOnly, []netIn{in(nil, peerNs(sel("ns", "z")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Namespace != "x" }))
		e.delete(t, fromY)
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Namespace == "z" }))
	}},
	{"egress-to-cidr", func(t *testing.T, e *env) {
		yb := e.pod("y/b").IP.String() + "/32"
		e.apply(t, netpol("x", "to-yb", podA, egressOnly, nil, []netOut{out(nil, peerCIDR(yb))}))
		e.expect(t, false, onlyFromXA(func(to *pod, _ pport) bool { return is(to, "y/b") }))
	}},
	{"egress-cidr-except", func(t *testing.T, e *env) {
		yb := e.pod("y/b").IP.String() + "/32"
		e.apply(t, netpol("x", "all-but-yb", podA, egressOnly, nil, []netOut{out(nil, peerCIDR("10.244.0.0/16", yb))}))
		e.expect(t, false, onlyFromXA(func(to *pod, _ pport) bool { return !is(to, "y/b") }))
	}},
	{"ip-in-cidr-and-except-allowed-by-other-policy", func(t *testing.T, e *env) {
		yb := e.pod("y/b").IP.String() + "/32"
		e.apply(t, netpol("x", "all-but-yb", podA, egressOnly, nil, []netOut{out(nil, peerCIDR("10.244.0.0/16", yb))}))
		e.expect(t, false, onlyFromXA(func(to *pod, _ pport) bool { return !is(to, "y/b") }))
		e.apply(t, netpol("x", "yb", podA, egressOnly, nil, []netOut{out(nil, peerCIDR(yb))}))
		e.expect(t, false, allowAll)
	}},
	{"ingress-from-cidr-of-other-node", func(t *testing.T, e *env) {
		node2 := e.c.State.Nodes[1]
		e.apply(t, netpol("x", "from-node-2-pods", podA, ingressOnly, []netIn{in(nil, peerCIDR(node2.PodCIDR))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Node == node2.Name }))
	}},
	{"egress-cidr-with-port", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "udp-81-anywhere", podA, egressOnly, nil, []netOut{out(ports(port(udp, 81)), peerCIDR("10.244.0.0/16"))}))
		e.expect(t, false, onlyFromXA(func(_ *pod, p pport) bool { return p == pport{Port: 81, Protocol: udp} }))
	}},
	{"ingress-and-egress-independent", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "a-no-egress", podA, egressOnly, nil, nil),
			netpol("x", "b-no-ingress", labels("pod", "b"), ingressOnly, nil, nil))
		e.expect(t, false, func(from, to *pod, _ pport) bool { return !is(from, "x/a") && !is(to, "x/b") })
	}},
	{"sctp-not-treated-as-tcp", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "sctp-80", podA, ingressOnly, []netIn{in(ports(port(sctp, 80)))}, nil))
		e.expect(t, false, onlyToXA(func(_ *pod, p pport) bool { return p == pport{Port: 80, Protocol: sctp} }))
	}},
	{"sctp-from-namespace-isolates", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "sctp-81-from-y", podA, ingressOnly, []netIn{in(ports(port(sctp, 81)), peerNs(sel("ns", "y")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool {
			return from.Namespace == "y" && p == pport{Port: 81, Protocol: sctp}
		}))
	}},
	{"sctp-from-pod-and-namespace", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "sctp-80-from-yb", podA, ingressOnly, []netIn{in(ports(port(sctp, 80)), peerPodNs(sel("pod", "b"), sel("ns", "y")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool { return is(from, "y/b") && p == pport{Port: 80, Protocol: sctp} }))
	}},
	{"udp-only-policy-blocks-tcp", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "udp-81", podA, ingressOnly, []netIn{in(ports(port(udp, 81)))}, nil))
		e.expect(t, false, onlyToXA(func(_ *pod, p pport) bool { return p == pport{Port: 81, Protocol: udp} }))
	}},
	{"udp-from-pod-and-namespace", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "udp-80-from-yb", podA, ingressOnly, []netIn{in(ports(port(udp, 80)), peerPodNs(sel("pod", "b"), sel("ns", "y")))}, nil))
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool { return is(from, "y/b") && p == pport{Port: 80, Protocol: udp} }))
	}},
	{"egress-to-dns-only", func(t *testing.T, e *env) {
		e.apply(t, netpol("x", "deny-egress", all, egressOnly, nil, nil),
			netpol("x", "allow-dns", all, egressOnly, nil, []netOut{egressToDNS()}))
		e.expect(t, true, func(from, to *pod, _ pport) bool { return from.Namespace != "x" || to.DNS })
	}},
	{"default-deny-all-keeps-dns", func(t *testing.T, e *env) {
		e.apply(t, netpol("y", "deny-all", all, bothTypes, nil, []netOut{egressToDNS()}))
		e.expect(t, true, func(from, to *pod, _ pport) bool {
			if to.Namespace == "y" {
				return false
			}
			return from.Namespace != "y" || to.DNS
		})
	}},
}

// setLabels replaces the labels of namespace name (kind "ns") or of pod
// kind/name (kind is then the pod's namespace). reset restores the layout's.
func (e *env) setLabels(t *testing.T, kind, name string, l map[string]string) {
	t.Helper()
	ctx := context.Background()
	var err error
	if kind == "ns" {
		err = localcluster.SetLabels(ctx, e.c.Client, &corev1.Namespace{}, client.ObjectKey{Name: name}, l)
	} else {
		err = localcluster.SetLabels(ctx, e.c.Client, &corev1.Pod{}, client.ObjectKey{Namespace: kind, Name: name}, l)
	}
	if err != nil {
		t.Fatalf("set labels on %s/%s: %v", kind, name, err)
	}
}
