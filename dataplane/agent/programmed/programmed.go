// Package programmed tracks which intent generations a node has
// programmed: from the policies of a committed state back to their intents
// (Ref), and since when each intent's generation has been in the kernel
// (Tracker). The node's NodeFlowReport carries the result, from which the
// controller sets each intent's Enforced condition.
package programmed

import (
	"cmp"
	"maps"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Ref is the intent a policy of the computed state belongs to, and the
// generation and mode it was programmed from.
type Ref struct {
	Namespace  string
	Name       string
	Generation int64
	Mode       v1alpha1.IntentMode
}

// Key is the intent's "namespace/name".
func (r Ref) Key() string { return r.Namespace + "/" + r.Name }

// Intents returns, per intent ("namespace/name"), the generation and mode
// whose policies are in the state's groups, that is, select pods of this
// node. refs maps policy keys (as in the state) to their intents. Where an
// intent's policies carry different generations (the controller is midway
// through applying them) the oldest counts: the node has the new generation
// only once all of its policies are.
func Intents(st *policy.State, refs map[string]Ref) map[string]Ref {
	out := map[string]Ref{}
	for _, groups := range [][]policy.Group{st.Ingress, st.Egress} {
		for _, g := range groups {
			for _, key := range g.Policies {
				ref, ok := refs[key]
				if !ok {
					continue
				}
				if old, ok := out[ref.Key()]; ok && old.Generation <= ref.Generation {
					continue
				}
				out[ref.Key()] = ref
			}
		}
	}
	return out
}

// Tracker remembers when each intent's generation was first programmed,
// across syncs.
type Tracker struct {
	byIntent map[string]v1alpha1.ProgrammedIntent
}

// Update records the intents a successful sync committed at now and
// returns them sorted by namespace and name. An intent keeps its
// programmedAt while its generation and mode stay; intents no longer
// programmed are forgotten.
func (t *Tracker) Update(current map[string]Ref, now time.Time) []v1alpha1.ProgrammedIntent {
	next := make(map[string]v1alpha1.ProgrammedIntent, len(current))
	for k, ref := range current {
		old, ok := t.byIntent[k]
		if ok && old.Generation == ref.Generation && old.Mode == ref.Mode {
			next[k] = old
			continue
		}
		next[k] = v1alpha1.ProgrammedIntent{Namespace: ref.Namespace, Name: ref.Name, Generation: ref.Generation,
			Mode: ref.Mode, ProgrammedAt: metav1.NewMicroTime(now)}
	}
	t.byIntent = next
	out := slices.Collect(maps.Values(next))
	slices.SortFunc(out, func(a, b v1alpha1.ProgrammedIntent) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Same compares two programmed lists by intent, generation and mode (not
// by time: an entry keeps its programmedAt while unchanged).
func Same(a, b []v1alpha1.ProgrammedIntent) bool {
	return slices.EqualFunc(a, b, func(x, y v1alpha1.ProgrammedIntent) bool {
		return x.Namespace == y.Namespace && x.Name == y.Name && x.Generation == y.Generation && x.Mode == y.Mode
	})
}
