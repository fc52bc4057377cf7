package programmed

import (
	"net/netip"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/policy"
)

func TestProgrammedIntents(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	st := &policy.State{
		Ingress: []policy.Group{
			{Policies: []string{"shop/a-ingress", "shop/b-ingress"}, IPs: []netip.Addr{ip}},
			{Policies: []string{policy.AuditKey("shop", "c-ingress")}, IPs: []netip.Addr{ip}},
		},
		Egress: []policy.Group{{Policies: []string{"other/a-egress", "other/plain"}, IPs: []netip.Addr{ip}}},
	}
	refs := map[string]Ref{
		"shop/a-ingress": {Namespace: "shop", Name: "a", Generation: 4, Mode: v1alpha1.ModeEnforce},
		// a's egress policy still carries the previous generation: a is at 3.
		"other/a-egress":                     {Namespace: "shop", Name: "a", Generation: 3, Mode: v1alpha1.ModeEnforce},
		"shop/b-ingress":                     {Namespace: "shop", Name: "b", Generation: 1, Mode: v1alpha1.ModeEnforce},
		policy.AuditKey("shop", "c-ingress"): {Namespace: "shop", Name: "c", Generation: 7, Mode: v1alpha1.ModeAudit},
		// d's policy selects no pod on this node: not programmed here.
		"shop/d-ingress": {Namespace: "shop", Name: "d", Generation: 2, Mode: v1alpha1.ModeEnforce},
	}
	got := Intents(st, refs)
	want := map[string]Ref{
		"shop/a": {Namespace: "shop", Name: "a", Generation: 3, Mode: v1alpha1.ModeEnforce},
		"shop/b": {Namespace: "shop", Name: "b", Generation: 1, Mode: v1alpha1.ModeEnforce},
		"shop/c": {Namespace: "shop", Name: "c", Generation: 7, Mode: v1alpha1.ModeAudit},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %+v, want %+v", k, got[k], w)
		}
	}
}

func TestProgrammedTrackerKeepsTheFirstCommit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a1 := Ref{Namespace: "shop", Name: "a", Generation: 1, Mode: v1alpha1.ModeEnforce}
	b1 := Ref{Namespace: "shop", Name: "b", Generation: 1, Mode: v1alpha1.ModeAudit}
	var tr Tracker
	steps := []struct {
		at      time.Time
		current map[string]Ref
		want    []v1alpha1.ProgrammedIntent
	}{
		{t0, map[string]Ref{"shop/b": b1, "shop/a": a1}, []v1alpha1.ProgrammedIntent{
			{Namespace: "shop", Name: "a", Generation: 1, Mode: v1alpha1.ModeEnforce, ProgrammedAt: metav1.NewMicroTime(t0)},
			{Namespace: "shop", Name: "b", Generation: 1, Mode: v1alpha1.ModeAudit, ProgrammedAt: metav1.NewMicroTime(t0)},
		}},
		// Same generations in a later sync: the first commit's time stays.
		{t0.Add(time.Minute), map[string]Ref{"shop/a": a1, "shop/b": b1}, []v1alpha1.ProgrammedIntent{
			{Namespace: "shop", Name: "a", Generation: 1, Mode: v1alpha1.ModeEnforce, ProgrammedAt: metav1.NewMicroTime(t0)},
			{Namespace: "shop", Name: "b", Generation: 1, Mode: v1alpha1.ModeAudit, ProgrammedAt: metav1.NewMicroTime(t0)},
		}},
		// a moves on to generation 2; b switches mode at its generation; both restart.
		{t0.Add(2 * time.Minute), map[string]Ref{"shop/a": {Namespace: "shop", Name: "a", Generation: 2, Mode: v1alpha1.ModeEnforce},
			"shop/b": {Namespace: "shop", Name: "b", Generation: 1, Mode: v1alpha1.ModeEnforce}}, []v1alpha1.ProgrammedIntent{
			{Namespace: "shop", Name: "a", Generation: 2, Mode: v1alpha1.ModeEnforce, ProgrammedAt: metav1.NewMicroTime(t0.Add(2 * time.Minute))},
			{Namespace: "shop", Name: "b", Generation: 1, Mode: v1alpha1.ModeEnforce, ProgrammedAt: metav1.NewMicroTime(t0.Add(2 * time.Minute))},
		}},
		// b is gone; it is forgotten and would start afresh.
		{t0.Add(3 * time.Minute), map[string]Ref{"shop/a": {Namespace: "shop", Name: "a", Generation: 2, Mode: v1alpha1.ModeEnforce}}, []v1alpha1.ProgrammedIntent{
			{Namespace: "shop", Name: "a", Generation: 2, Mode: v1alpha1.ModeEnforce, ProgrammedAt: metav1.NewMicroTime(t0.Add(2 * time.Minute))},
		}},
	}
	for i, s := range steps {
		got := tr.Update(s.current, s.at)
		if len(got) != len(s.want) {
			t.Fatalf("step %d: got %+v, want %+v", i, got, s.want)
		}
		for j := range got {
			if got[j] != s.want[j] {
				t.Errorf("step %d item %d: got %+v, want %+v", i, j, got[j], s.want[j])
			}
		}
	}
}

func TestEnforcedRef(t *testing.T) {
	np := func(l map[string]string) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "p", Labels: l}}
	}
	ref, ok := EnforcedRef(np(map[string]string{v1alpha1.LabelIntent: "a", v1alpha1.LabelIntentNamespace: "shop", v1alpha1.LabelIntentGeneration: "12"}))
	if !ok || ref != (Ref{Namespace: "shop", Name: "a", Generation: 12, Mode: v1alpha1.ModeEnforce}) {
		t.Errorf("got %+v %v", ref, ok)
	}
	if ref, ok := EnforcedRef(np(map[string]string{v1alpha1.LabelIntent: "a", v1alpha1.LabelIntentNamespace: "shop"})); !ok || ref.Generation != 0 {
		t.Errorf("no generation label: got %+v %v", ref, ok)
	}
	if _, ok := EnforcedRef(np(map[string]string{"app": "x"})); ok {
		t.Error("a policy of no intent has an intent")
	}
}
