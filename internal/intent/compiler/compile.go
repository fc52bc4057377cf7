package compiler

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/internal/intent"
)

// namespaceNameLabel is set by the API server on every Namespace; selecting
// on it pins a peer to one namespace.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// Compile returns the NetworkPolicies that enforce the intent, sorted by
// namespace and name: one ingress policy selecting the target, with one rule
// per resolved caller, and one egress policy per caller and zero-trust
// namespace of that caller. An unresolved target yields no policy.
func Compile(in Input) []networkingv1.NetworkPolicy {
	if in.Target == nil {
		return nil
	}
	target := canonicalSelector(in.Target)
	callers := uniqueNames(in.Callers)

	ingress := newPolicy(IngressPolicyName(in.Name), in.Namespace, policyLabels(in))
	ingress.Spec.PodSelector = *target
	ingress.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	var rules []networkingv1.NetworkPolicyIngressRule
	var policies []networkingv1.NetworkPolicy
	for _, c := range callers {
		if !c.Resolved {
			continue
		}
		peer, ok := ingressPeer(in.Namespace, c)
		if !ok {
			continue
		}
		rules = append(rules, networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{peer},
			Ports: PolicyPorts(c.Ports),
		})
		policies = append(policies, egressPolicies(in, target, c)...)
	}
	ingress.Spec.Ingress = sortedUnique(rules)
	policies = append(policies, ingress)

	for i := range policies {
		if in.Owner != nil && policies[i].Namespace == in.Namespace {
			policies[i].OwnerReferences = []metav1.OwnerReference{*in.Owner}
		}
	}
	sort.Slice(policies, func(i, j int) bool {
		if policies[i].Namespace != policies[j].Namespace {
			return policies[i].Namespace < policies[j].Namespace
		}
		return policies[i].Name < policies[j].Name
	})
	return policies
}

// policyLabels are the labels of the intent's policies: intent.Labels plus
// the generation they were compiled from. The generation stays out of
// intent.Labels, which also select the intent's policies of any generation.
func policyLabels(in Input) map[string]string {
	return intent.GenerationLabels(in.Name, in.Namespace, in.Generation)
}

// ingressPeer is the peer that stands for the caller in the target's policy.
func ingressPeer(intentNamespace string, c Caller) (networkingv1.NetworkPolicyPeer, bool) {
	switch {
	case c.IPBlock != nil:
		block := c.IPBlock.DeepCopy()
		block.Except = slices.Compact(slices.Sorted(slices.Values(block.Except)))
		if len(block.Except) == 0 {
			block.Except = nil
		}
		return networkingv1.NetworkPolicyPeer{IPBlock: block}, true
	case c.NamespaceSelector != nil:
		peer := networkingv1.NetworkPolicyPeer{NamespaceSelector: canonicalSelector(c.NamespaceSelector)}
		if c.PodSelector != nil {
			peer.PodSelector = canonicalSelector(c.PodSelector)
		}
		return peer, true
	case c.Namespace != "":
		peer := networkingv1.NetworkPolicyPeer{PodSelector: canonicalSelector(orEmpty(c.PodSelector))}
		if c.Namespace != intentNamespace {
			peer.NamespaceSelector = namespaceSelector(c.Namespace)
		}
		return peer, true
	}
	return networkingv1.NetworkPolicyPeer{}, false
}

// egressPolicies let the caller's pods in zero-trust namespaces reach the
// target, which default-deny egress would otherwise block.
func egressPolicies(in Input, target *metav1.LabelSelector, c Caller) []networkingv1.NetworkPolicy {
	if c.IPBlock != nil {
		return nil
	}
	namespaces := slices.Compact(slices.Sorted(slices.Values(c.EgressNamespaces)))
	out := make([]networkingv1.NetworkPolicy, 0, len(namespaces))
	for _, ns := range namespaces {
		p := newPolicy(EgressPolicyName(in.Namespace, in.Name, c.Name), ns, policyLabels(in))
		p.Spec.PodSelector = *canonicalSelector(orEmpty(c.PodSelector))
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
			To: []networkingv1.NetworkPolicyPeer{{
				PodSelector:       target.DeepCopy(),
				NamespaceSelector: namespaceSelector(in.Namespace),
			}},
			Ports: PolicyPorts(c.Ports),
		}}
		out = append(out, p)
	}
	return out
}

// ZeroTrust returns the two policies of a zero-trust namespace: default deny
// in both directions for every pod, and egress to cluster DNS.
func ZeroTrust(namespace string, dns DNSConfig) []networkingv1.NetworkPolicy {
	labels := intent.ManagedLabels()

	baseline := newPolicy(BaselineName, namespace, labels)
	baseline.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	dnsPods := &metav1.LabelSelector{}
	if len(dns.PodSelector) > 0 {
		dnsPods.MatchLabels = maps(dns.PodSelector)
	}
	baseline.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{{PodSelector: dnsPods, NamespaceSelector: namespaceSelector(dns.Namespace)}},
		Ports: PolicyPorts(dns.Ports),
	}}

	deny := newPolicy(DefaultDenyName, namespace, labels)
	deny.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	return []networkingv1.NetworkPolicy{baseline, deny}
}

func newPolicy(name, namespace string, labels map[string]string) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: maps(labels)},
	}
}

func namespaceSelector(namespace string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: namespace}}
}

func orEmpty(s *metav1.LabelSelector) *metav1.LabelSelector {
	if s == nil {
		return &metav1.LabelSelector{}
	}
	return s
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// canonicalSelector returns a copy with empty parts dropped and expressions
// and values sorted, so equal selectors render equally.
func canonicalSelector(s *metav1.LabelSelector) *metav1.LabelSelector {
	out := &metav1.LabelSelector{}
	if len(s.MatchLabels) > 0 {
		out.MatchLabels = maps(s.MatchLabels)
	}
	for _, r := range s.MatchExpressions {
		r := *r.DeepCopy()
		r.Values = slices.Compact(slices.Sorted(slices.Values(r.Values)))
		if len(r.Values) == 0 {
			r.Values = nil
		}
		out.MatchExpressions = append(out.MatchExpressions, r)
	}
	sort.Slice(out.MatchExpressions, func(i, j int) bool {
		a, b := out.MatchExpressions[i], out.MatchExpressions[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Operator != b.Operator {
			return a.Operator < b.Operator
		}
		return strings.Join(a.Values, ",") < strings.Join(b.Values, ",")
	})
	return out
}

// PolicyPorts converts and sorts ports; nil stays nil (all ports).
func PolicyPorts(ports []Port) []networkingv1.NetworkPolicyPort {
	if len(ports) == 0 {
		return nil
	}
	out := make([]networkingv1.NetworkPolicyPort, 0, len(ports))
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		port := p.Port
		np := networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port}
		if p.EndPort != nil {
			end := *p.EndPort
			np.EndPort = &end
		}
		out = append(out, np)
	}
	return sortedUnique(out)
}

// sortedUnique sorts items by their JSON form and drops repeats: a total,
// stable order that does not depend on the order of the spec.
func sortedUnique[T any](items []T) []T {
	if len(items) == 0 {
		return nil
	}
	type keyed struct {
		key  string
		item T
	}
	ks := make([]keyed, 0, len(items))
	for _, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			// The API types always marshal; keep the item under a key that
			// still sorts deterministically rather than dropping it.
			b = []byte(fmt.Sprintf("%#v", it))
		}
		ks = append(ks, keyed{string(b), it})
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].key < ks[j].key })
	out := make([]T, 0, len(ks))
	for i, k := range ks {
		if i > 0 && k.key == ks[i-1].key {
			continue
		}
		out = append(out, k.item)
	}
	return out
}

// uniqueNames makes caller names unique by suffixing repeats with their
// index, so each caller's egress policy has a name of its own. A suffixed
// name can itself be taken (callers "a", "a-2", "a": defaulted names repeat
// explicit ones), so it keeps suffixing until the name is free: otherwise
// two egress policies would share a name and one would overwrite the other
// (FuzzCompile checks it).
func uniqueNames(callers []Caller) []Caller {
	seen := make(map[string]bool, len(callers))
	out := make([]Caller, len(callers))
	for i, c := range callers {
		name := c.Name
		for n := 0; seen[name]; n++ {
			name = fmt.Sprintf("%s-%d", c.Name, i)
			if n > 0 {
				name = fmt.Sprintf("%s-%d-%d", c.Name, i, n)
			}
		}
		c.Name = name
		seen[name] = true
		out[i] = c
	}
	return out
}
