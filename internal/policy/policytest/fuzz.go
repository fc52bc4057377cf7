package policytest

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-dev/palisade/internal/policy"
)

// byteSource turns fuzz bytes into choices. Exhausted, it answers 0, so every
// byte string decodes to some cluster and short inputs to small ones.
type byteSource struct{ b []byte }

func (s *byteSource) pick(n int) int {
	if len(s.b) == 0 || n <= 1 {
		return 0
	}
	v := int(s.b[0])
	s.b = s.b[1:]
	return v % n
}

func (s *byteSource) chance(outOf int) bool { return s.pick(outOf) == 0 }

func choose[T any](s *byteSource, from []T) T { return from[s.pick(len(from))] }

// The pools mix valid values with the malformed ones an object can carry when
// it did not pass the API server's validation (an old server, a different
// admission chain, a bug): the model must fail closed on all of them.
var (
	fuzzLabelKeys   = []string{"app", "team", "role", "kubernetes.io/metadata.name", "", "bad key!"}
	fuzzLabelValues = []string{"a", "b", "c", "x", "y", "", "-bad-"}
	fuzzOperators   = []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist, "Bogus"}
	fuzzPodIPs      = []string{"10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.1.2", "172.16.0.5", "fd00::1", "fd00::1:1", "fd00::2", "::ffff:10.0.0.3", "not-an-ip", "10.0.0.1"}
	fuzzCIDRs       = []string{"10.0.0.0/8", "10.0.0.0/24", "10.0.1.0/24", "10.0.0.1/32", "0.0.0.0/0", "::/0", "fd00::/16", "fd00::1:0/112", "10.0.0.0/33", "10.0.0.1/24", "garbage", "", "172.16.0.0/12", "::ffff:10.0.0.0/104", " 10.0.0.0/8"}
	fuzzProtocols   = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP, "ICMP", "", "tcp"}
	fuzzPortNumbers = []int32{80, 53, 443, 8080, 1, 65535, 0, -1, 65536, 81}
	fuzzPortNames   = []string{"http", "dns", "metrics", "", "HTTP"}
	fuzzPolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress, "Sideways"}
	fuzzNamespaces  = []string{"x", "y", "z"}
)

// FuzzInput decodes arbitrary bytes into a cluster seen from node Node: a few
// namespaces, pods (made from API Pods through policy.PodFromAPI, as the
// agent does) and NetworkPolicies with valid and malformed parts. Fuzz
// targets of the model and of the backends share it.
func FuzzInput(data []byte) policy.Input {
	s := &byteSource{b: data}
	in := policy.Input{NodeName: Node}
	for _, n := range fuzzNamespaces {
		in.Namespaces = append(in.Namespaces, Namespace(n, fuzzLabels(s, 2)))
	}
	// Two live pods never share an address here: which of them an address
	// means is a separate question (TestSharedIPGoesToOneGroup).
	used := map[netip.Addr]bool{}
	for i := range 1 + s.pick(7) {
		p := policy.PodFromAPI(fuzzPod(s, i))
		p.IPs = slices.DeleteFunc(p.IPs, func(ip netip.Addr) bool { return used[ip] })
		for _, ip := range p.IPs {
			used[ip] = true
		}
		in.Pods = append(in.Pods, p)
	}
	for i := range s.pick(5) {
		in.Policies = append(in.Policies, fuzzPolicy(s, i))
	}
	// Audit policies last, so that older corpus entries decode as before.
	for i := range s.pick(3) {
		in.AuditPolicies = append(in.AuditPolicies, fuzzPolicy(s, i))
	}
	return in
}

func fuzzLabels(s *byteSource, most int) map[string]string {
	n := s.pick(most + 1)
	if n == 0 {
		return nil
	}
	out := map[string]string{}
	for range n {
		out[choose(s, fuzzLabelKeys[:3])] = choose(s, fuzzLabelValues[:5])
	}
	return out
}

func fuzzPod(s *byteSource, i int) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: choose(s, fuzzNamespaces), Name: fmt.Sprintf("p%d", i), Labels: fuzzLabels(s, 2)},
		Spec:       corev1.PodSpec{NodeName: choose(s, []string{Node, Node, "node-b", ""})},
	}
	p.Spec.HostNetwork = s.chance(8)
	switch s.pick(10) {
	case 0:
		p.Status.Phase = corev1.PodSucceeded
	case 1:
		p.Status.Phase = corev1.PodFailed
	default:
		p.Status.Phase = corev1.PodRunning
	}
	for range s.pick(3) {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: choose(s, fuzzPodIPs)})
	}
	if len(p.Status.PodIPs) > 0 {
		p.Status.PodIP = p.Status.PodIPs[0].IP
	}
	var ports []corev1.ContainerPort
	for range s.pick(3) {
		ports = append(ports, corev1.ContainerPort{
			Name:          choose(s, fuzzPortNames),
			Protocol:      choose(s, fuzzProtocols),
			ContainerPort: choose(s, fuzzPortNumbers),
		})
	}
	p.Spec.Containers = []corev1.Container{{Name: "app", Ports: ports}}
	return p
}

func fuzzSelector(s *byteSource) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{MatchLabels: fuzzLabels(s, 2)}
	if s.chance(6) {
		// Keys and values the API server would reject.
		if sel.MatchLabels == nil {
			sel.MatchLabels = map[string]string{}
		}
		sel.MatchLabels[choose(s, fuzzLabelKeys)] = choose(s, fuzzLabelValues)
	}
	for range s.pick(3) {
		req := metav1.LabelSelectorRequirement{Key: choose(s, fuzzLabelKeys), Operator: choose(s, fuzzOperators)}
		for range s.pick(3) {
			req.Values = append(req.Values, choose(s, fuzzLabelValues))
		}
		sel.MatchExpressions = append(sel.MatchExpressions, req)
	}
	return sel
}

func fuzzPeer(s *byteSource) networkingv1.NetworkPolicyPeer {
	var p networkingv1.NetworkPolicyPeer
	switch s.pick(6) {
	case 0:
		p.PodSelector = fuzzSelector(s)
	case 1:
		p.NamespaceSelector = fuzzSelector(s)
	case 2:
		p.PodSelector, p.NamespaceSelector = fuzzSelector(s), fuzzSelector(s)
	case 3, 4:
		b := &networkingv1.IPBlock{CIDR: choose(s, fuzzCIDRs)}
		for range s.pick(3) {
			b.Except = append(b.Except, choose(s, fuzzCIDRs))
		}
		p.IPBlock = b
		if s.chance(8) {
			p.PodSelector = fuzzSelector(s) // invalid together with ipBlock
		}
	default:
		// An empty peer: invalid, must match nothing.
	}
	return p
}

func fuzzPorts(s *byteSource) []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for range s.pick(4) {
		var p networkingv1.NetworkPolicyPort
		if !s.chance(4) {
			proto := choose(s, fuzzProtocols)
			p.Protocol = &proto
		}
		switch s.pick(4) {
		case 0:
			// all ports of the protocol
		case 1:
			v := intstr.FromString(choose(s, fuzzPortNames))
			p.Port = &v
		default:
			v := intstr.FromInt32(choose(s, fuzzPortNumbers))
			p.Port = &v
		}
		if s.chance(3) {
			end := choose(s, fuzzPortNumbers)
			p.EndPort = &end
		}
		out = append(out, p)
	}
	return out
}

func fuzzPolicy(s *byteSource, i int) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: choose(s, fuzzNamespaces), Name: fmt.Sprintf("np%d", i)}}
	np.Spec.PodSelector = *fuzzSelector(s)
	for range s.pick(3) {
		np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, choose(s, fuzzPolicyTypes))
	}
	for range s.pick(3) {
		var r networkingv1.NetworkPolicyIngressRule
		for range s.pick(3) {
			r.From = append(r.From, fuzzPeer(s))
		}
		r.Ports = fuzzPorts(s)
		np.Spec.Ingress = append(np.Spec.Ingress, r)
	}
	for range s.pick(3) {
		var r networkingv1.NetworkPolicyEgressRule
		for range s.pick(3) {
			r.To = append(r.To, fuzzPeer(s))
		}
		r.Ports = fuzzPorts(s)
		np.Spec.Egress = append(np.Spec.Egress, r)
	}
	return np
}

// FuzzPackets returns the first packets of connections between every pair of
// the input's addresses (plus a few outside the cluster), same family, for a
// spread of protocols and ports: what fuzz targets check the model on.
func FuzzPackets(in policy.Input) []policy.Packet {
	ips := []netip.Addr{netip.MustParseAddr("172.16.9.9"), netip.MustParseAddr("10.0.255.1"), netip.MustParseAddr("fd00:ff::1")}
	for _, p := range in.Pods {
		ips = append(ips, p.IPs...)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	ips = slices.Compact(ips)
	type pp struct {
		proto corev1.Protocol
		port  uint16
	}
	kinds := []pp{{corev1.ProtocolTCP, 80}, {corev1.ProtocolTCP, 8080}, {corev1.ProtocolTCP, 65535}, {corev1.ProtocolUDP, 53}, {corev1.ProtocolUDP, 80}, {corev1.ProtocolSCTP, 443}, {"ICMP", 0}}
	var out []policy.Packet
	for _, src := range ips {
		for _, dst := range ips {
			if src.Is4() != dst.Is4() {
				continue
			}
			for _, k := range kinds {
				out = append(out, policy.Packet{Src: src, Dst: dst, Protocol: k.proto, Port: k.port})
			}
		}
	}
	return out
}
