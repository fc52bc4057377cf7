// Package policytest holds test helpers for code built on the policy model:
// builders for API objects and pods, a random cluster generator, and an
// oracle that decides packets straight from the NetworkPolicy objects, with
// none of the model's machinery. Backends compare their rendered rulesets
// against it.
package policytest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-dev/palisade/internal/policy"
)

// Node is the local node of RandomInput.
const Node = "node-a"

func Pod(ns, name, nodeName string, lbls map[string]string, ips ...string) policy.Pod {
	p := policy.Pod{Namespace: ns, Name: name, NodeName: nodeName, Labels: lbls}
	for _, s := range ips {
		p.IPs = append(p.IPs, netip.MustParseAddr(s))
	}
	return p
}

func WithPorts(p policy.Pod, ports ...policy.ContainerPort) policy.Pod { p.Ports = ports; return p }

func Namespace(name string, lbls map[string]string) policy.Namespace {
	l := map[string]string{"kubernetes.io/metadata.name": name}
	for k, v := range lbls {
		l[k] = v
	}
	return policy.Namespace{Name: name, Labels: l}
}

func Policy(ns, name string, mods ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mods {
		m(p)
	}
	return p
}

func Selecting(l map[string]string) func(*networkingv1.NetworkPolicy) {
	return func(p *networkingv1.NetworkPolicy) { p.Spec.PodSelector = metav1.LabelSelector{MatchLabels: l} }
}

func Types(ts ...networkingv1.PolicyType) func(*networkingv1.NetworkPolicy) {
	return func(p *networkingv1.NetworkPolicy) { p.Spec.PolicyTypes = ts }
}

func IngressRule(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicy) {
	return func(p *networkingv1.NetworkPolicy) {
		p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports})
	}
}

func EgressRule(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicy) {
	return func(p *networkingv1.NetworkPolicy) {
		p.Spec.Egress = append(p.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports})
	}
}

func PodPeer(l map[string]string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: l}}
}

func NamespacePeer(l map[string]string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: l}}
}

func NamespacePodPeer(ns, p map[string]string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: ns}, PodSelector: &metav1.LabelSelector{MatchLabels: p}}
}

func BlockPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func Peers(ps ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return ps }

func Port(proto corev1.Protocol, p int32) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(p)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

func TCP(p int32) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(p)
	return networkingv1.NetworkPolicyPort{Port: &v} // protocol defaults to TCP
}

func PortRange(proto corev1.Protocol, p, end int32) networkingv1.NetworkPolicyPort {
	r := Port(proto, p)
	r.EndPort = &end
	return r
}

func NamedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	v := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

func AllPortsOf(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

func Packet(src, dst string, proto corev1.Protocol, p uint16) policy.Packet {
	return policy.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Protocol: proto, Port: p}
}

// OracleAllows decides a packet straight from the API objects, the way the
// NetworkPolicy documentation reads, with none of Compute's machinery (no
// ranges, no groups). Tests compare Compute's model against it. Audit
// policies never change a verdict, so it reads in.Policies only: a pod
// selected by audit policies alone is not isolated.
func OracleAllows(in policy.Input, p policy.Packet) bool {
	for _, d := range OracleDecide(in, p) {
		if d.Verdict == policy.LogDropped {
			return false
		}
	}
	return true
}

// OracleDecide tells, straight from the API objects, what the dataplane logs
// for a packet (the reference for policy.State.Decide): for a local source
// then a local destination, the first policy (by key) whose rule allows it,
// or, when none does, Dropped with every selecting policy, or Audited with
// every selecting audit policy when only audit policies select the pod.
// Audit policies are ignored for a pod that an enforce policy selects.
func OracleDecide(in policy.Input, p policy.Packet) []policy.Decision {
	podAt := func(ip netip.Addr) *policy.Pod {
		for i := range in.Pods {
			q := &in.Pods[i]
			if q.HostNetwork || q.Finished {
				continue
			}
			for _, a := range q.IPs {
				if a == ip {
					return q
				}
			}
		}
		return nil
	}
	src, dst := podAt(p.Src), podAt(p.Dst)
	local := func(q *policy.Pod) bool { return q != nil && q.NodeName == in.NodeName }
	var out []policy.Decision
	if local(src) {
		if d, ok := oracleDirection(in, src, p.Dst, dst, networkingv1.PolicyTypeEgress, p); ok {
			out = append(out, d)
			if d.Verdict == policy.LogDropped {
				return out
			}
		}
	}
	if local(dst) {
		if d, ok := oracleDirection(in, dst, p.Src, src, networkingv1.PolicyTypeIngress, p); ok {
			out = append(out, d)
		}
	}
	return out
}

type keyedPolicy struct {
	key string
	np  *networkingv1.NetworkPolicy
}

func oracleDirection(in policy.Input, self *policy.Pod, remoteIP netip.Addr, remote *policy.Pod, dir networkingv1.PolicyType, p policy.Packet) (policy.Decision, bool) {
	verdict := policy.LogDropped
	selecting := oracleSelecting(in.Policies, policyKeyOf, self, dir)
	if len(selecting) == 0 {
		selecting = oracleSelecting(in.AuditPolicies, auditKeyOf, self, dir)
		verdict = policy.LogAudited
	}
	if len(selecting) == 0 {
		return policy.Decision{}, false
	}
	d := policy.Decision{Direction: policy.Ingress, Verdict: verdict}
	if dir == networkingv1.PolicyTypeEgress {
		d.Direction = policy.Egress
	}
	for _, kp := range selecting {
		d.Policies = append(d.Policies, kp.key)
	}
	for _, kp := range selecting {
		pol := kp.np
		if _, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector); err != nil {
			continue
		}
		if dir == networkingv1.PolicyTypeIngress {
			for _, r := range pol.Spec.Ingress {
				if oraclePeers(in, pol.Namespace, r.From, remoteIP, remote) && oraclePorts(r.Ports, self, p) {
					return policy.Decision{Direction: d.Direction, Verdict: policy.LogAllowed, Policies: []string{kp.key}}, true
				}
			}
		} else {
			for _, r := range pol.Spec.Egress {
				if oraclePeers(in, pol.Namespace, r.To, remoteIP, remote) && oraclePorts(r.Ports, remote, p) {
					return policy.Decision{Direction: d.Direction, Verdict: policy.LogAllowed, Policies: []string{kp.key}}, true
				}
			}
		}
	}
	return d, true
}

func policyKeyOf(np *networkingv1.NetworkPolicy) string { return np.Namespace + "/" + np.Name }

func auditKeyOf(np *networkingv1.NetworkPolicy) string { return policy.AuditKey(np.Namespace, np.Name) }

// oracleSelecting returns the policies that isolate self in dir, sorted by
// key and without duplicate keys.
func oracleSelecting(pols []*networkingv1.NetworkPolicy, keyOf func(*networkingv1.NetworkPolicy) string, self *policy.Pod, dir networkingv1.PolicyType) []keyedPolicy {
	var out []keyedPolicy
	for _, pol := range pols {
		if pol == nil || pol.Namespace != self.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
		if err == nil && !sel.Matches(labels.Set(self.Labels)) {
			continue
		}
		types := pol.Spec.PolicyTypes
		if len(types) == 0 {
			types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(pol.Spec.Egress) > 0 {
				types = append(types, networkingv1.PolicyTypeEgress)
			}
		}
		if slices.Contains(types, dir) {
			out = append(out, keyedPolicy{keyOf(pol), pol})
		}
	}
	slices.SortStableFunc(out, func(a, b keyedPolicy) int { return strings.Compare(a.key, b.key) })
	return slices.CompactFunc(out, func(a, b keyedPolicy) bool { return a.key == b.key })
}

func oraclePeers(in policy.Input, ns string, list []networkingv1.NetworkPolicyPeer, ip netip.Addr, remote *policy.Pod) bool {
	if len(list) == 0 {
		return true
	}
	for _, peer := range list {
		if peer.IPBlock != nil {
			if peer.PodSelector != nil || peer.NamespaceSelector != nil {
				continue
			}
			_, cidr, err := net.ParseCIDR(peer.IPBlock.CIDR)
			if err != nil || mapped(peer.IPBlock.CIDR) || !cidr.Contains(ip.AsSlice()) {
				continue
			}
			excluded, bad := false, false
			for _, e := range peer.IPBlock.Except {
				_, en, err := net.ParseCIDR(e)
				if err != nil || mapped(e) || (len(en.IP) == len(cidr.IP)) != true {
					bad = true
					break
				}
				excluded = excluded || en.Contains(ip.AsSlice())
			}
			if !bad && !excluded {
				return true
			}
			continue
		}
		if remote == nil || (peer.PodSelector == nil && peer.NamespaceSelector == nil) {
			continue
		}
		if peer.NamespaceSelector == nil {
			if remote.Namespace != ns {
				continue
			}
		} else {
			s, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
			if err != nil {
				continue
			}
			var nl labels.Set
			for _, n := range in.Namespaces {
				if n.Name == remote.Namespace {
					nl = n.Labels
				}
			}
			if !s.Matches(nl) {
				continue
			}
		}
		if peer.PodSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			if err != nil || !s.Matches(labels.Set(remote.Labels)) {
				continue
			}
		}
		return true
	}
	return false
}

// mapped tells whether a CIDR is an IPv4-mapped IPv6 prefix, which
// NetworkPolicy leaves ambiguous: such a block matches nothing.
func mapped(cidr string) bool {
	p, err := netip.ParsePrefix(cidr)
	return err == nil && p.Addr().Is4In6()
}

// oraclePorts checks the ports of a rule; named ports resolve on dstPod.
func oraclePorts(ports []networkingv1.NetworkPolicyPort, dstPod *policy.Pod, p policy.Packet) bool {
	if len(ports) == 0 {
		return true
	}
	for _, pp := range ports {
		proto := corev1.ProtocolTCP
		if pp.Protocol != nil {
			proto = *pp.Protocol
		}
		if proto != p.Protocol || (proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP && proto != corev1.ProtocolSCTP) {
			continue
		}
		switch {
		case pp.Port == nil:
			return true
		case pp.Port.Type == intstr.String:
			if pp.EndPort != nil || dstPod == nil {
				continue
			}
			for _, cp := range dstPod.Ports {
				cproto := cp.Protocol
				if cproto == "" {
					cproto = corev1.ProtocolTCP
				}
				if cp.Name == pp.Port.StrVal && cproto == proto && int(cp.Port) == int(p.Port) {
					return true
				}
			}
		default:
			end := pp.Port.IntVal
			if pp.EndPort != nil {
				end = *pp.EndPort
			}
			if pp.Port.IntVal >= 1 && end >= pp.Port.IntVal && end <= 65535 && int32(p.Port) >= pp.Port.IntVal && int32(p.Port) <= end {
				return true
			}
		}
	}
	return false
}

func Describe(ps []*networkingv1.NetworkPolicy) string {
	s := ""
	for _, p := range ps {
		s += fmt.Sprintf("\n%s/%s types=%v podSelector=%v ingress=%+v egress=%+v", p.Namespace, p.Name, p.Spec.PolicyTypes, p.Spec.PodSelector, p.Spec.Ingress, p.Spec.Egress)
	}
	return s
}

func RandomInput(r *rand.Rand) policy.Input {
	apps := []string{"a", "b", "c"}
	nss := []string{"x", "y", "z"}
	in := policy.Input{NodeName: Node}
	for _, n := range nss {
		in.Namespaces = append(in.Namespaces, Namespace(n, map[string]string{"team": n}))
	}
	for i := range 8 {
		ns := nss[r.IntN(3)]
		nodeName := Node
		if r.IntN(3) == 0 {
			nodeName = "node-b"
		}
		p := Pod(ns, fmt.Sprintf("p%d", i), nodeName, map[string]string{"app": apps[r.IntN(3)]}, fmt.Sprintf("10.0.%d.%d", i/4, 1+i%4))
		if r.IntN(2) == 0 {
			p.IPs = append(p.IPs, netip.MustParseAddr(fmt.Sprintf("fd00::%d:%d", i/4, 1+i%4)))
		}
		if r.IntN(2) == 0 {
			p.Ports = append(p.Ports, policy.ContainerPort{Name: "http", Protocol: corev1.ProtocolTCP, Port: []int32{80, 8080}[r.IntN(2)]})
		}
		if r.IntN(3) == 0 {
			p.Ports = append(p.Ports, policy.ContainerPort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53})
		}
		if r.IntN(12) == 0 {
			p.IPs = nil
		}
		in.Pods = append(in.Pods, p)
	}
	sel := func() *metav1.LabelSelector {
		switch r.IntN(4) {
		case 0:
			return &metav1.LabelSelector{}
		case 1:
			return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{apps[r.IntN(3)], apps[r.IntN(3)]}}}}
		default:
			return &metav1.LabelSelector{MatchLabels: map[string]string{"app": apps[r.IntN(3)]}}
		}
	}
	nsSel := func() *metav1.LabelSelector {
		if r.IntN(3) == 0 {
			return &metav1.LabelSelector{}
		}
		return &metav1.LabelSelector{MatchLabels: map[string]string{"team": nss[r.IntN(3)]}}
	}
	peersOf := func() []networkingv1.NetworkPolicyPeer {
		var out []networkingv1.NetworkPolicyPeer
		for range r.IntN(3) {
			switch r.IntN(5) {
			case 0:
				out = append(out, networkingv1.NetworkPolicyPeer{PodSelector: sel()})
			case 1:
				out = append(out, networkingv1.NetworkPolicyPeer{NamespaceSelector: nsSel()})
			case 2:
				out = append(out, networkingv1.NetworkPolicyPeer{NamespaceSelector: nsSel(), PodSelector: sel()})
			case 3:
				out = append(out, BlockPeer([]string{"10.0.0.0/16", "172.16.0.0/12", "fd00::/16", "10.0.1.0/24"}[r.IntN(4)], []string{"10.0.0.0/24", "10.0.1.2/32", "fd00::1:0/112"}[:r.IntN(3)]...))
			default:
				out = append(out, BlockPeer([]string{"10.0.0.0/33", "0.0.0.0/0", "::/0"}[r.IntN(3)]))
			}
		}
		return out
	}
	portsOf := func() []networkingv1.NetworkPolicyPort {
		var out []networkingv1.NetworkPolicyPort
		for range r.IntN(3) {
			switch r.IntN(6) {
			case 0:
				out = append(out, TCP(80))
			case 1:
				out = append(out, Port(corev1.ProtocolUDP, 53))
			case 2:
				out = append(out, PortRange(corev1.ProtocolTCP, 80, 443))
			case 3:
				out = append(out, NamedPort(corev1.ProtocolTCP, "http"))
			case 4:
				out = append(out, NamedPort(corev1.ProtocolUDP, "dns"))
			default:
				out = append(out, AllPortsOf(corev1.ProtocolSCTP))
			}
		}
		return out
	}
	randomPolicy := func(i int) *networkingv1.NetworkPolicy {
		p := Policy(nss[r.IntN(3)], fmt.Sprintf("np%d", i))
		p.Spec.PodSelector = *sel()
		switch r.IntN(4) {
		case 0:
			p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		case 1:
			p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
		}
		for range r.IntN(3) {
			p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: peersOf(), Ports: portsOf()})
		}
		for range r.IntN(3) {
			p.Spec.Egress = append(p.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: peersOf(), Ports: portsOf()})
		}
		return p
	}
	for i := range 1 + r.IntN(4) {
		in.Policies = append(in.Policies, randomPolicy(i))
	}
	// Audit policies come last so that the clusters drawn before them stay
	// what they were; their names overlap the enforce policies' on purpose.
	if r.IntN(2) == 0 {
		for i := range 1 + r.IntN(2) {
			in.AuditPolicies = append(in.AuditPolicies, randomPolicy(i))
		}
	}
	return in
}
