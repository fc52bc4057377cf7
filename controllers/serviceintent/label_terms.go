package serviceintent

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// A label term is one "key=value" pair. Selectors are indexed by one term
// they require and pods by every term they carry, so that matching a pod
// against thousands of target selectors (or a target against thousands of
// pods) looks at the few that share a term instead of all of them, whose
// scans would dominate the controller's CPU under pod churn in a namespace
// with thousands of intents and pods.

// labelTerm renders one label pair as an index key.
func labelTerm(key, value string) string { return key + "=" + value }

// labelTerms returns every term of a label set.
func labelTerms(l map[string]string) []string {
	out := make([]string, 0, len(l))
	for k, v := range l {
		out = append(out, labelTerm(k, v))
	}
	return out
}

// requiredTerm returns a term that every label set the selector matches
// carries: its first requirement (by key) that is an equality, or an In
// with one value. Selectors without one (Exists, NotIn, a multi-valued In,
// the empty selector) return false and must be matched by a scan.
func requiredTerm(sel labels.Selector) (string, bool) {
	reqs, selectable := sel.Requirements()
	if !selectable {
		return "", false
	}
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if v := r.Values(); v.Len() == 1 {
				return labelTerm(r.Key(), v.UnsortedList()[0]), true
			}
		}
	}
	return "", false
}
