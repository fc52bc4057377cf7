package compiler

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/intent"
)

// fuzzBytes turns fuzz bytes into choices; exhausted, it answers 0.
type fuzzBytes struct{ b []byte }

func (s *fuzzBytes) pick(n int) int {
	if len(s.b) == 0 || n <= 1 {
		return 0
	}
	v := int(s.b[0])
	s.b = s.b[1:]
	return v % n
}

func pickOf[T any](s *fuzzBytes, from []T) T { return from[s.pick(len(from))] }

// Names are DNS labels, as the CRD and the API server guarantee; defaulted
// caller names (callers-<i>, a reference's name) can repeat explicit ones.
var fuzzNames = []string{"a", "a-1", "a-2", "b", "callers-0", "callers-1", "orders", strings.Repeat("n", 63), "x"}

func fuzzSelector(s *fuzzBytes) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{}
	for range s.pick(3) {
		if sel.MatchLabels == nil {
			sel.MatchLabels = map[string]string{}
		}
		sel.MatchLabels[pickOf(s, []string{"app", "team", "tier"})] = pickOf(s, []string{"a", "b", ""})
	}
	for range s.pick(3) {
		r := metav1.LabelSelectorRequirement{Key: pickOf(s, []string{"app", "tier"}),
			Operator: pickOf(s, []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists})}
		for range s.pick(3) {
			r.Values = append(r.Values, pickOf(s, []string{"a", "b", "c"}))
		}
		sel.MatchExpressions = append(sel.MatchExpressions, r)
	}
	return sel
}

func fuzzCompilerInput(data []byte) Input {
	s := &fuzzBytes{b: data}
	in := Input{Name: pickOf(s, fuzzNames), Namespace: pickOf(s, []string{"shop", "risk", strings.Repeat("m", 63)})}
	// From the input's length, not a drawn byte, so the seed corpus keeps
	// meaning what it meant; 0 (no label) included.
	in.Generation = int64(len(data) % 4)
	if s.pick(6) != 0 {
		in.Target = fuzzSelector(s)
	}
	if s.pick(2) == 0 {
		in.Owner = &metav1.OwnerReference{APIVersion: "palisade.dev/v1alpha1", Kind: "ServiceIntent", Name: in.Name, UID: "u"}
	}
	for range s.pick(6) {
		c := Caller{Name: pickOf(s, fuzzNames), Resolved: s.pick(5) != 0}
		switch s.pick(5) {
		case 0:
			c.IPBlock = &networkingv1.IPBlock{CIDR: pickOf(s, []string{"10.0.0.0/8", "203.0.113.0/24", "fd00::/16"})}
			for range s.pick(3) {
				c.IPBlock.Except = append(c.IPBlock.Except, pickOf(s, []string{"10.1.0.0/16", "10.2.0.0/16", "fd00:1::/32"}))
			}
			if s.pick(2) == 0 && c.IPBlock.Except == nil {
				c.IPBlock.Except = []string{}
			}
		case 1:
			c.NamespaceSelector = fuzzSelector(s)
			if s.pick(2) == 0 {
				c.PodSelector = fuzzSelector(s)
			}
		case 2:
			// A caller that names no peer (never produced by the resolver):
			// it must grant nothing.
		default:
			c.Namespace = pickOf(s, []string{"shop", "risk", in.Namespace})
			if s.pick(4) != 0 {
				c.PodSelector = fuzzSelector(s)
			}
		}
		for range s.pick(3) {
			c.EgressNamespaces = append(c.EgressNamespaces, pickOf(s, []string{"shop", "risk", "sre"}))
		}
		for range s.pick(4) {
			p := Port{Protocol: pickOf(s, []corev1.Protocol{"", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP})}
			if s.pick(3) == 0 {
				p.Port = intstr.FromString(pickOf(s, []string{"http", "dns"}))
			} else {
				p.Port = intstr.FromInt32(pickOf(s, []int32{53, 80, 443, 8080}))
				if s.pick(3) == 0 {
					end := pickOf(s, []int32{443, 9000})
					p.EndPort = &end
				}
			}
			c.Ports = append(c.Ports, p)
		}
		in.Callers = append(in.Callers, c)
	}
	return in
}

// FuzzCompile feeds the compiler random intents and checks that it never
// panics, that its output does not depend on the order of callers, and the
// invariants that keep it fail closed: no policy without a target, one
// ingress policy selecting exactly the target, every rule naming a peer (an
// empty from/to would open the pod to everyone), unresolved callers granting
// nothing, unique valid names, Palisade's labels on everything. Seeds: f.Add
// below and testdata/fuzz/FuzzCompile.
func FuzzCompile(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("orders"))
	f.Add([]byte{6, 0, 1, 2, 1, 0, 1, 5, 0, 1, 1, 4, 1, 1, 0, 2, 2, 3, 3, 1, 1, 2, 1, 0, 2, 2, 1, 1, 3, 2, 1})
	f.Add([]byte{0, 0, 5, 1, 1, 5, 1, 0, 2, 1, 4, 3, 2, 1, 3, 0, 0, 1, 2, 0, 2, 1, 1, 3, 1, 1, 3, 0, 4, 2, 1, 1, 4, 5, 1, 1, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzCompilerInput(data)
		out := Compile(in)
		text, err := YAML(out)
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		rev := in
		rev.Callers = slices.Clone(in.Callers)
		slices.Reverse(rev.Callers)
		if other, err := YAML(Compile(rev)); err != nil || !bytes.Equal(text, other) {
			// Callers with equal names are told apart by their index, so
			// only inputs with unique caller names must be order-free.
			if uniqueCallerNames(in) {
				t.Fatalf("output depends on caller order (err %v):\n%s\n---\n%s", err, text, other)
			}
		}
		if err := checkCompiled(in, out); err != nil {
			t.Fatalf("%v\ninput: %+v\noutput:\n%s", err, in, text)
		}
	})
}

func uniqueCallerNames(in Input) bool {
	seen := map[string]bool{}
	for _, c := range in.Callers {
		if seen[c.Name] {
			return false
		}
		seen[c.Name] = true
	}
	return true
}

func checkCompiled(in Input, out []networkingv1.NetworkPolicy) error {
	if in.Target == nil {
		if len(out) != 0 {
			return fmt.Errorf("no target, yet %d policies", len(out))
		}
		return nil
	}
	resolved := 0
	for _, c := range in.Callers {
		if c.Resolved {
			resolved++
		}
	}
	seen := map[string]bool{}
	ingress := 0
	for i := range out {
		p := &out[i]
		key := p.Namespace + "/" + p.Name
		if seen[key] {
			return fmt.Errorf("two policies named %s: one caller's policy would overwrite another's", key)
		}
		seen[key] = true
		if len(p.Name) > maxNameLength || p.Name == "" {
			return fmt.Errorf("policy name %q has %d characters", p.Name, len(p.Name))
		}
		for k, v := range intent.Labels(in.Name, in.Namespace) {
			if p.Labels[k] != v {
				return fmt.Errorf("%s lacks label %s=%s", key, k, v)
			}
		}
		if got, want := p.Labels[v1alpha1.LabelIntentGeneration], generationLabel(in.Generation); got != want {
			return fmt.Errorf("%s: generation label %q, want %q", key, got, want)
		}
		if (in.Owner != nil) != (len(p.OwnerReferences) == 1) && p.Namespace == in.Namespace {
			return fmt.Errorf("%s: owner references %v, owner %v", key, p.OwnerReferences, in.Owner)
		}
		if p.Namespace != in.Namespace && len(p.OwnerReferences) > 0 {
			return fmt.Errorf("%s: owner reference across namespaces", key)
		}
		for _, r := range p.Spec.Ingress {
			if err := checkPeers(key, r.From); err != nil {
				return err
			}
		}
		for _, r := range p.Spec.Egress {
			if err := checkPeers(key, r.To); err != nil {
				return err
			}
		}
		if p.Name == IngressPolicyName(in.Name) && p.Namespace == in.Namespace {
			ingress++
			want, _ := YAML([]networkingv1.NetworkPolicy{{Spec: networkingv1.NetworkPolicySpec{PodSelector: *canonicalSelector(in.Target)}}})
			got, _ := YAML([]networkingv1.NetworkPolicy{{Spec: networkingv1.NetworkPolicySpec{PodSelector: p.Spec.PodSelector}}})
			if !bytes.Equal(want, got) {
				return fmt.Errorf("ingress policy selects %v, target is %v", p.Spec.PodSelector, in.Target)
			}
			if !slices.Equal(p.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
				return fmt.Errorf("ingress policy types %v", p.Spec.PolicyTypes)
			}
			if len(p.Spec.Ingress) > resolved {
				return fmt.Errorf("%d ingress rules for %d resolved callers", len(p.Spec.Ingress), resolved)
			}
			continue
		}
		if !slices.Equal(p.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) || len(p.Spec.Egress) != 1 || len(p.Spec.Ingress) != 0 {
			return fmt.Errorf("%s is neither the ingress policy nor a one-rule egress policy", key)
		}
	}
	if ingress != 1 {
		return fmt.Errorf("%d ingress policies, want 1", ingress)
	}
	if len(out)-1 > resolved*3 {
		return fmt.Errorf("%d egress policies for %d resolved callers", len(out)-1, resolved)
	}
	return nil
}

// checkPeers: every rule names exactly one non-empty peer. An empty from/to
// list, or an empty peer, would allow every source or destination.
func checkPeers(key string, peers []networkingv1.NetworkPolicyPeer) error {
	if len(peers) != 1 {
		return fmt.Errorf("%s: a rule with %d peers", key, len(peers))
	}
	p := peers[0]
	if p.IPBlock == nil && p.PodSelector == nil && p.NamespaceSelector == nil {
		return fmt.Errorf("%s: a rule with an empty peer", key)
	}
	if p.IPBlock != nil && (p.PodSelector != nil || p.NamespaceSelector != nil) {
		return fmt.Errorf("%s: ipBlock with a selector", key)
	}
	return nil
}
