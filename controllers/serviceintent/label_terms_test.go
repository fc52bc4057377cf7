package serviceintent

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestRequiredTerm(t *testing.T) {
	tests := []struct {
		name string
		sel  metav1.LabelSelector
		want string // "" when the selector has no required term
	}{
		{"match labels: the first key", metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web", "app": "shop"}}, "app=shop"},
		{"in with one value", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"shop"}}}}, "app=shop"},
		{"in with two values", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}}, ""},
		{"exists", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}}, ""},
		{"not in", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"a"}}}}, ""},
		{"exists first, equality after", metav1.LabelSelector{
			MatchLabels:      map[string]string{"tier": "web"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}},
		}, "tier=web"},
		{"empty selects everything", metav1.LabelSelector{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := metav1.LabelSelectorAsSelector(&tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := requiredTerm(sel)
			if ok != (tt.want != "") || got != tt.want {
				t.Fatalf("requiredTerm = %q, %v; want %q", got, ok, tt.want)
			}
			// The term is necessary: a label set without it never matches.
			if ok && sel.Matches(labels.Set{"unrelated": "x"}) {
				t.Fatalf("%s matches a label set without %s", sel, got)
			}
		})
	}
	if got := labelTerms(map[string]string{"a": "1", "b": "2"}); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"a=1", "b=2"}) {
		t.Errorf("labelTerms = %v", got)
	}
}
