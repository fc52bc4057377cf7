package compiler

import (
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Isolate returns the intent's ingress policy with no rules: the target's
// pods accept no new connections. The controller writes it in place of the
// compiled policies when compiling the intent fails, so a broken intent
// fails closed (its target stays default-deny for ingress) instead of
// leaving stale grants or none at all. An unresolved target yields nothing.
func Isolate(in Input) []networkingv1.NetworkPolicy {
	if in.Target == nil {
		return nil
	}
	p := newPolicy(IngressPolicyName(in.Name), in.Namespace, policyLabels(in))
	p.Spec.PodSelector = *canonicalSelector(in.Target)
	p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if in.Owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*in.Owner}
	}
	return []networkingv1.NetworkPolicy{p}
}
