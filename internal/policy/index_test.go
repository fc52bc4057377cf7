package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestIndexSelectsAsFullScan: the pod index returns exactly the pods, in
// input order, that matching every peer against the selectors finds.
func TestIndexSelectsAsFullScan(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	keys, values := []string{"app", "team", "tier"}, []string{"a", "b", "c", ""}
	nss := []string{"x", "y", "z", "w"}
	randomLabels := func() map[string]string {
		m := map[string]string{}
		for range r.IntN(3) {
			m[keys[r.IntN(len(keys))]] = values[r.IntN(len(values))]
		}
		return m
	}
	randomSelector := func() *metav1.LabelSelector {
		s := &metav1.LabelSelector{}
		if r.IntN(2) == 0 {
			s.MatchLabels = randomLabels()
		}
		ops := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}
		for range r.IntN(3) {
			e := metav1.LabelSelectorRequirement{Key: keys[r.IntN(len(keys))], Operator: ops[r.IntN(len(ops))]}
			if e.Operator == metav1.LabelSelectorOpIn || e.Operator == metav1.LabelSelectorOpNotIn {
				for range 1 + r.IntN(2) {
					e.Values = append(e.Values, values[r.IntN(len(values))])
				}
			}
			s.MatchExpressions = append(s.MatchExpressions, e)
		}
		return s
	}
	for i := range 300 {
		in := Input{NodeName: "n"}
		for _, ns := range nss[:3] { // w has pods but no Namespace object
			in.Namespaces = append(in.Namespaces, Namespace{Name: ns, Labels: randomLabels()})
		}
		for j := range r.IntN(40) {
			in.Pods = append(in.Pods, Pod{Namespace: nss[r.IntN(len(nss))], Name: fmt.Sprint(j), Labels: randomLabels(),
				NodeName: "n", Finished: r.IntN(8) == 0, IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(i), byte(j)})}})
		}
		x := newPodIndex(in)
		for range 20 {
			podSel, err := metav1.LabelSelectorAsSelector(randomSelector())
			if err != nil {
				continue
			}
			var nsSel labels.Selector
			if r.IntN(2) == 0 {
				if nsSel, err = metav1.LabelSelectorAsSelector(randomSelector()); err != nil {
					continue
				}
			}
			ns := nss[r.IntN(len(nss))]
			var want []string
			for _, p := range x.peers {
				inNS := p.Namespace == ns
				if nsSel != nil {
					inNS = nsSel.Matches(labels.Set(nsLabels(in, p.Namespace)))
				}
				if inNS && podSel.Matches(labels.Set(p.Labels)) {
					want = append(want, p.Namespace+"/"+p.Name)
				}
			}
			var got []string
			for _, p := range x.selectPeers(ns, nsSel, podSel) {
				got = append(got, p.Namespace+"/"+p.Name)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("ns %s, namespaceSelector %v, podSelector %v: index selects %v, a full scan %v", ns, nsSel, podSel, got, want)
			}
		}
	}
}

func nsLabels(in Input, name string) map[string]string {
	for _, ns := range in.Namespaces {
		if ns.Name == name {
			return ns.Labels
		}
	}
	return nil
}

// TestSelectorKeyDistinguishes: different selectors never share a cache key.
func TestSelectorKeyDistinguishes(t *testing.T) {
	sels := []*metav1.LabelSelector{
		{},
		{MatchLabels: map[string]string{"a": "b"}},
		{MatchLabels: map[string]string{"a": "b", "c": "d"}},
		{MatchLabels: map[string]string{"a": "bc"}},
		{MatchLabels: map[string]string{"ab": "c"}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: metav1.LabelSelectorOpIn, Values: []string{"b", "c"}}}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: metav1.LabelSelectorOpIn, Values: []string{"bc"}}}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"b", "c"}}}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: metav1.LabelSelectorOpExists}}},
		{MatchLabels: map[string]string{"a": "b"}, MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: metav1.LabelSelectorOpExists}}},
	}
	seen := map[string]int{}
	for i, s := range sels {
		k := selectorKey(s)
		if j, ok := seen[k]; ok {
			t.Fatalf("selectors %d and %d share key %q", j, i, k)
		}
		seen[k] = i
	}
}
