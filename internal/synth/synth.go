// Package synth builds synthetic clusters for the benchmarks: namespaces,
// pods with addresses, and ServiceIntents compiled into NetworkPolicies by
// the real intent compiler, at any size, deterministically. The Go
// micro-benchmarks and the bench harness (bench/cmd/palisade-bench) share
// it, so a figure in docs/benchmarks.md and a -bench result describe the
// same workload.
package synth

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-dev/palisade/internal/intent/compiler"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Shape is the size of a synthetic cluster.
type Shape struct {
	// Pods is the number of pods; Intents the number of ServiceIntents.
	Pods, Intents int
	// Namespaces defaults to max(1, Pods/100); Nodes to 20.
	Namespaces, Nodes int
	// AppsPerNamespace defaults to 10: pods of a namespace are spread over
	// app-0..app-9, and intents target and call those apps.
	AppsPerNamespace int
	// ZeroTrustEvery makes every n-th namespace zero trust (default-deny
	// both ways plus egress policies for declared calls); 0: none.
	ZeroTrustEvery int
}

// LocalNode is the node whose agent the benchmarks play.
const LocalNode = "node-0"

// ServicePort is the numeric port every intent grants; NamedPort the named
// one ("http", container port 8080) that every third intent grants instead.
const (
	ServicePort = 8080
	NamedPort   = "http"
)

func (s Shape) withDefaults() Shape {
	if s.Namespaces <= 0 {
		s.Namespaces = max(1, s.Pods/100)
	}
	if s.Nodes <= 0 {
		s.Nodes = 20
	}
	if s.AppsPerNamespace <= 0 {
		s.AppsPerNamespace = 10
	}
	return s
}

// Cluster is a synthetic cluster.
type Cluster struct {
	Shape      Shape
	Namespaces []policy.Namespace
	Pods       []policy.Pod
	Intents    []compiler.Input
	// Policies are the NetworkPolicies the compiler makes of Intents, plus
	// the zero-trust namespaces' default-deny and baseline policies.
	Policies []*networkingv1.NetworkPolicy
}

// NamespaceName and AppName name the i-th namespace and app.
func NamespaceName(i int) string { return fmt.Sprintf("ns-%03d", i) }
func AppName(i int) string       { return fmt.Sprintf("app-%d", i) }

// PodIP is the address of pod i: 10.0.0.0/8 counted in steps of two, so
// that no two pods are adjacent and peer sets cannot merge them into ranges
// (which would flatter set sizes).
func PodIP(i int) netip.Addr {
	v := uint32(10)<<24 | uint32(2*i+2)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// NewPod is pod i of the cluster.
func (s Shape) NewPod(i int) policy.Pod {
	s = s.withDefaults()
	ns := i % s.Namespaces
	app := (i / s.Namespaces) % s.AppsPerNamespace
	return policy.Pod{
		Namespace: NamespaceName(ns),
		Name:      fmt.Sprintf("pod-%06d", i),
		Labels:    map[string]string{"app": AppName(app)},
		NodeName:  fmt.Sprintf("node-%d", spread(i)%s.Nodes),
		IPs:       []netip.Addr{PodIP(i)},
		Ports:     []policy.ContainerPort{{Name: NamedPort, Protocol: corev1.ProtocolTCP, Port: ServicePort}},
	}
}

// spread scatters pods over nodes independently of their namespace and app
// (a multiplicative hash), as a scheduler would.
func spread(i int) int { return int((uint32(i) * 2654435761) >> 8) }

// New builds the cluster.
func New(s Shape) *Cluster {
	s = s.withDefaults()
	c := &Cluster{Shape: s}
	for i := range s.Namespaces {
		labels := map[string]string{"kubernetes.io/metadata.name": NamespaceName(i), "team": fmt.Sprintf("team-%d", i%10)}
		c.Namespaces = append(c.Namespaces, policy.Namespace{Name: NamespaceName(i), Labels: labels})
	}
	for i := range s.Pods {
		c.Pods = append(c.Pods, s.NewPod(i))
	}
	dns := compiler.DNSConfig{Namespace: NamespaceName(0), PodSelector: map[string]string{"app": AppName(0)},
		Ports: []compiler.Port{{Port: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP}}}
	for i := range s.Namespaces {
		if s.zeroTrust(i) {
			for _, p := range compiler.ZeroTrust(NamespaceName(i), dns) {
				c.Policies = append(c.Policies, &p)
			}
		}
	}
	for j := range s.Intents {
		in := s.Intent(j, 0)
		c.Intents = append(c.Intents, in)
		for _, p := range compiler.Compile(in) {
			c.Policies = append(c.Policies, &p)
		}
	}
	return c
}

func (s Shape) zeroTrust(ns int) bool { return s.ZeroTrustEvery > 0 && ns%s.ZeroTrustEvery == 0 }

// Intent is intent j, resolved as the controller would resolve it: it
// protects one app and admits two callers, one from its own namespace and
// one from the next namespace; every tenth intent also admits an address
// range. variant changes the granted port (a policy change).
func (s Shape) Intent(j, variant int) compiler.Input {
	s = s.withDefaults()
	ns := j % s.Namespaces
	app := (j / s.Namespaces) % s.AppsPerNamespace
	other := (ns + 1) % s.Namespaces
	port := compiler.Port{Port: intstr.FromInt32(int32(ServicePort + variant)), Protocol: corev1.ProtocolTCP}
	if j%3 == 2 && variant == 0 {
		port = compiler.Port{Port: intstr.FromString(NamedPort), Protocol: corev1.ProtocolTCP}
	}
	egress := func(n int) []string {
		if s.zeroTrust(n) {
			return []string{NamespaceName(n)}
		}
		return nil
	}
	in := compiler.Input{
		Name:      fmt.Sprintf("svc-%05d", j),
		Namespace: NamespaceName(ns),
		Target:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": AppName(app)}},
		Callers: []compiler.Caller{
			{Name: "local", Resolved: true, Namespace: NamespaceName(ns),
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": AppName((app + 1) % s.AppsPerNamespace)}},
				Ports:       []compiler.Port{port}, EgressNamespaces: egress(ns)},
			{Name: "remote", Resolved: true, Namespace: NamespaceName(other),
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": AppName((app + 2) % s.AppsPerNamespace)}},
				Ports:       []compiler.Port{port}, EgressNamespaces: egress(other)},
		},
	}
	if j%10 == 0 {
		in.Callers = append(in.Callers, compiler.Caller{Name: "partners", Resolved: true,
			IPBlock: &networkingv1.IPBlock{CIDR: fmt.Sprintf("172.%d.%d.0/24", 16+j%16, (j/16)%256)},
			Ports:   []compiler.Port{{Port: intstr.FromInt32(443), Protocol: corev1.ProtocolTCP}}})
	}
	return in
}

// Input is the policy model's input for the node LocalNode.
func (c *Cluster) Input() policy.Input {
	return policy.Input{NodeName: LocalNode, Pods: c.Pods, Namespaces: c.Namespaces, Policies: c.Policies}
}

// LocalPods counts the pods on LocalNode.
func (c *Cluster) LocalPods() int {
	n := 0
	for _, p := range c.Pods {
		if p.NodeName == LocalNode {
			n++
		}
	}
	return n
}

// WithPod returns a copy of the input with pod i of the shape added (i past
// the cluster's pods: a new pod).
func (c *Cluster) WithPod(in policy.Input, i int) policy.Input {
	p := c.Shape.NewPod(i)
	p.NodeName = LocalNode
	in.Pods = append(append([]policy.Pod(nil), in.Pods...), p)
	return in
}

// WithIntentVariant returns a copy of the input in which intent j's
// policies are recompiled with another granted port (a policy change).
func (c *Cluster) WithIntentVariant(in policy.Input, j, variant int) policy.Input {
	changed := map[string]*networkingv1.NetworkPolicy{}
	for _, p := range compiler.Compile(c.Shape.Intent(j, variant)) {
		changed[p.Namespace+"/"+p.Name] = &p
	}
	out := make([]*networkingv1.NetworkPolicy, len(in.Policies))
	for i, p := range in.Policies {
		out[i] = p
		if np, ok := changed[p.Namespace+"/"+p.Name]; ok {
			out[i] = np
		}
	}
	in.Policies = out
	return in
}
