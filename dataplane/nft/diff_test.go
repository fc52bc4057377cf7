package nft

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/synth"
)

// TestDiffElementsMergeMatchesMaps: the merge pass over sorted sets finds
// exactly the additions and deletions (in the same order) that the map-based
// diff finds, and both rebuild next from old.
func TestDiffElementsMergeMatchesMaps(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	random := func() []render.Element {
		var es []render.Element
		for range r.IntN(40) {
			a := netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(32))})
			es = append(es, render.Element{Addr: a, AddrLast: a, Proto: uint8(r.IntN(2)), Jump: []string{"", "x"}[r.IntN(2)]})
		}
		slices.SortFunc(es, render.CompareElements)
		return slices.CompactFunc(es, func(a, b render.Element) bool { return a == b })
	}
	for i := range 2000 {
		old, next := random(), random()
		if i%10 == 0 {
			next = slices.Clone(old)
		}
		add, del := diffElements(old, next)
		wantAdd, wantDel := diffElementsUnsorted(old, next)
		if !slices.Equal(add, wantAdd) || !slices.Equal(del, wantDel) {
			t.Fatalf("merge diff %v/%v, map diff %v/%v", add, del, wantAdd, wantDel)
		}
		got := slices.DeleteFunc(slices.Clone(old), func(e render.Element) bool { return slices.Contains(del, e) })
		got = append(got, add...)
		slices.SortFunc(got, render.CompareElements)
		if !slices.Equal(got, next) {
			t.Fatalf("old %v - %v + %v = %v, want %v", old, del, add, got, next)
		}
	}
}

// TestDiffRulesetsSkipsUnchanged: an update between equal rulesets plans
// nothing, and a change to one set and one chain plans only those.
func TestDiffRulesetsSkipsUnchanged(t *testing.T) {
	old := bigRuleset(50)
	if p := diffRulesets(old, bigRuleset(50)); p.budget() != (budget{}) {
		t.Fatalf("equal rulesets plan %+v", p.budget())
	}
	next := bigRuleset(50)
	set, chain := &next.Sets[len(next.Sets)-1], &next.Chains[len(next.Chains)-1]
	set.Elements = set.Elements[1:]
	chain.Rules = chain.Rules[1:]
	p := diffRulesets(old, next)
	if len(p.elems) != 1 || len(p.elems[0].del) == 0 || len(p.elems[0].add) != 0 {
		t.Errorf("element diffs %+v, want one deletion in %s", p.elems, set.Name)
	}
	if len(p.changed) != 1 || p.changed[0].Name != chain.Name {
		t.Errorf("changed chains %v", p.changed)
	}
	if len(p.addedChains)+len(p.removedChains)+len(p.addedSets)+len(p.removedSets) != 0 {
		t.Errorf("plan adds or removes objects: %+v", p)
	}
}

// BenchmarkDiffRulesets measures the Go side of an incremental sync (the
// plan and its socket budget) for one pod added and one policy changed, at
// 1k and 10k pods. It grows with the number of chains and sets (one cheap
// comparison each), not with what changed.
func BenchmarkDiffRulesets(b *testing.B) {
	for _, pods := range []int{1000, 10000} {
		c := synth.New(synth.Shape{Pods: pods, Intents: 1000, Namespaces: 100})
		in := c.Input()
		rs := func(in policy.Input) *render.Ruleset { st := policy.Compute(in); return render.Render(&st) }
		base := rs(in)
		for _, change := range []struct {
			name string
			next *render.Ruleset
		}{
			{"pod-added", rs(c.WithPod(in, pods))},
			{"policy-changed", rs(c.WithIntentVariant(in, 0, 1))},
		} {
			b.Run(fmt.Sprintf("pods=%d/%s", pods, change.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					p := diffRulesets(base, change.next)
					if p.budget().msgs == 0 {
						b.Fatal("no change planned")
					}
				}
			})
		}
	}
}
