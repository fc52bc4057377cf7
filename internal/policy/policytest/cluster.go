package policytest

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/internal/policy"
)

// This file is the small cluster the renderer and backend tests share: two
// namespaces, four pods (three of them on Node, one with a named port, one
// IPv4-only) and whatever policies a test adds.

// Namespaces are x (team=x) and y (team=y).
func Namespaces() []policy.Namespace {
	return []policy.Namespace{Namespace("x", map[string]string{"team": "x"}), Namespace("y", map[string]string{"team": "y"})}
}

// BasePods are x/a (app=a, named port http 8080/TCP), x/b (app=b) and y/c
// (app=c, IPv4 only) on Node, and y/a (app=a) on node-b.
func BasePods() []policy.Pod {
	return []policy.Pod{
		WithPorts(Pod("x", "a", Node, map[string]string{"app": "a"}, "10.100.1.1", "fd00:100::1:1"),
			policy.ContainerPort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080}),
		Pod("x", "b", Node, map[string]string{"app": "b"}, "10.100.1.2", "fd00:100::1:2"),
		Pod("y", "a", "node-b", map[string]string{"app": "a"}, "10.100.2.1", "fd00:100::2:1"),
		Pod("y", "c", Node, map[string]string{"app": "c"}, "10.100.2.3"),
	}
}

// ClusterInput is the input of Node with Namespaces, pods and policies.
func ClusterInput(pods []policy.Pod, policies ...*networkingv1.NetworkPolicy) policy.Input {
	return policy.Input{NodeName: Node, Namespaces: Namespaces(), Pods: pods, Policies: policies}
}

// ClusterState is the state ClusterInput computes to.
func ClusterState(pods []policy.Pod, policies ...*networkingv1.NetworkPolicy) *policy.State {
	st := policy.Compute(ClusterInput(pods, policies...))
	return &st
}

// MixedPolicies exercise most of NetworkPolicy on BasePods: pod, namespace
// and ipBlock peers with exceptions, numeric, ranged, SCTP and named ports,
// egress to named ports, and an allow-all.
func MixedPolicies() []*networkingv1.NetworkPolicy {
	return []*networkingv1.NetworkPolicy{
		Policy("x", "web", Selecting(map[string]string{"app": "a"}),
			IngressRule(Peers(PodPeer(map[string]string{"app": "b"}), NamespacePeer(map[string]string{"team": "y"})), TCP(80), PortRange(corev1.ProtocolUDP, 5000, 5010)),
			IngressRule(Peers(BlockPeer("10.0.0.0/8", "10.100.0.0/16"), BlockPeer("fd00::/8", "fd00:100::/48")), NamedPort(corev1.ProtocolTCP, "http")),
			IngressRule(nil, Port(corev1.ProtocolSCTP, 9)),
		),
		Policy("x", "egress", Selecting(nil),
			EgressRule(Peers(NamespacePodPeer(map[string]string{}, map[string]string{"app": "a"})), NamedPort(corev1.ProtocolTCP, "http"), TCP(80)),
			EgressRule(nil, Port(corev1.ProtocolUDP, 53)),
		),
		Policy("y", "all", Selecting(nil), IngressRule(nil)),
	}
}
