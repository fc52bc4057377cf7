package compiler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// Caller kinds reported in status for callers that name no workload kind.
const (
	KindService     = "Service"
	KindPodSelector = "PodSelector"
	KindIPBlock     = "IPBlock"
)

// LabelSelector converts an API selector; nil stays nil.
func LabelSelector(s *v1alpha1.LabelSelector) *metav1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &metav1.LabelSelector{}
	if len(s.MatchLabels) > 0 {
		out.MatchLabels = make(map[string]string, len(s.MatchLabels))
		for k, v := range s.MatchLabels {
			out.MatchLabels[k] = string(v)
		}
	}
	for _, r := range s.MatchExpressions {
		req := metav1.LabelSelectorRequirement{Key: r.Key, Operator: metav1.LabelSelectorOperator(r.Operator)}
		for _, v := range r.Values {
			req.Values = append(req.Values, string(v))
		}
		out.MatchExpressions = append(out.MatchExpressions, req)
	}
	return out
}

// Ports converts API ports; an empty list stays nil (all ports).
func Ports(ports []v1alpha1.IntentPort) []Port {
	if len(ports) == 0 {
		return nil
	}
	out := make([]Port, 0, len(ports))
	for _, p := range ports {
		proto := corev1.Protocol(p.Protocol)
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		port := Port{Port: p.Port, Protocol: proto}
		if p.EndPort != nil {
			end := *p.EndPort
			port.EndPort = &end
		}
		out = append(out, port)
	}
	return out
}

// IPBlock converts an API IP block.
func IPBlock(b *v1alpha1.IPBlock) *networkingv1.IPBlock {
	if b == nil {
		return nil
	}
	out := &networkingv1.IPBlock{CIDR: string(b.CIDR)}
	for _, e := range b.Except {
		out.Except = append(out.Except, string(e))
	}
	return out
}

// CallerName is the caller's name field, or its default: the referenced
// object's name, or callers-<index> for selectors and IP blocks.
func CallerName(index int, c *v1alpha1.Caller) string {
	switch {
	case c.Name != "":
		return c.Name
	case c.ServiceRef != nil:
		return c.ServiceRef.Name
	case c.WorkloadRef != nil:
		return c.WorkloadRef.Name
	}
	return fmt.Sprintf("callers-%d", index)
}

// CallerKind is the kind of peer a caller names, as status reports it.
func CallerKind(c *v1alpha1.Caller) string {
	switch {
	case c.ServiceRef != nil:
		return KindService
	case c.WorkloadRef != nil:
		return string(c.WorkloadRef.Kind)
	case c.IPBlock != nil:
		return KindIPBlock
	}
	return KindPodSelector
}
