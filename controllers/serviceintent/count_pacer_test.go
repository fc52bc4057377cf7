package serviceintent

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func TestCountOnly(t *testing.T) {
	base := v1alpha1.ServiceIntentStatus{
		ObservedGeneration: 3, SelectedPods: 2,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReady, Message: "the intent is in force"}},
	}
	with := func(f func(*v1alpha1.ServiceIntentStatus)) v1alpha1.ServiceIntentStatus {
		c := *base.DeepCopy()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cur  v1alpha1.ServiceIntentStatus
		want bool
	}{
		{"unchanged", base, false},
		{"count moved", with(func(s *v1alpha1.ServiceIntentStatus) { s.SelectedPods = 3 }), true},
		{"count and generation moved", with(func(s *v1alpha1.ServiceIntentStatus) { s.SelectedPods, s.ObservedGeneration = 3, 4 }), false},
		{"count moved to zero, Ready message changed", with(func(s *v1alpha1.ServiceIntentStatus) {
			s.SelectedPods = 0
			s.Conditions[0].Message = "the intent is in force; its target selects no pods, so it opens nothing"
		}), false},
		{"enforcement changed with the count", with(func(s *v1alpha1.ServiceIntentStatus) {
			s.SelectedPods = 3
			s.Enforcement = &v1alpha1.EnforcementStatus{Generation: 3, NodesDesired: 2}
		}), false},
		{"only something else changed", with(func(s *v1alpha1.ServiceIntentStatus) { s.ObservedGeneration = 4 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := countOnly(&base, &tt.cur); got != tt.want {
				t.Errorf("countOnly = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCountPacer(t *testing.T) {
	key := func(i int) client.ObjectKey { return client.ObjectKey{Namespace: "load", Name: string(rune('a' + i))} }
	now := time.Now()
	p := newCountPacer(2) // 2 writes/s, bursts of 4
	for i := range 4 {
		if wait := p.admit(key(i), now); wait != 0 {
			t.Fatalf("write %d of the burst held back %s", i, wait)
		}
	}
	w4 := p.admit(key(4), now)
	if w4 <= 0 || w4 > time.Second {
		t.Fatalf("fifth write: wait %s, want its turn within 0.5 s", w4)
	}
	w5 := p.admit(key(5), now)
	if w5 <= w4 {
		t.Fatalf("sixth write: wait %s, want after the fifth's %s", w5, w4)
	}
	// Asking again keeps the turn (one write per intent, however often its
	// count moves): the wait shrinks with time, never starts over.
	if again := p.admit(key(4), now.Add(w4/2)); again <= 0 || again > w4-w4/2+time.Millisecond {
		t.Errorf("fifth write asked again halfway: wait %s, want about %s", again, w4-w4/2)
	}
	if got := p.admit(key(4), now.Add(w4)); got != 0 {
		t.Errorf("fifth write at its turn: wait %s, want 0", got)
	}
	// A turn is never given back: the sixth intent's turn stays out until
	// it comes, and the next intent waits behind it.
	if w6 := p.admit(key(6), now); w6 <= w5 {
		t.Errorf("seventh write: wait %s, want after the sixth's %s", w6, w5)
	}
	// A turn that passed unused (the count moved back before it came) lets
	// the intent's next count change go at once, on the token it was given.
	if got := p.admit(key(5), now.Add(time.Hour)); got != 0 {
		t.Errorf("sixth write, long after its turn: wait %s, want 0", got)
	}
	// A deleted intent's turn is dropped; created again, it asks anew.
	p.forget(key(6))
	if got := p.admit(key(6), now.Add(w5)); got <= 0 {
		t.Errorf("a forgotten intent went at once (wait %s) while the limiter is behind", got)
	}
	// No pacing: everything goes at once.
	off := newCountPacer(-1)
	for i := range 100 {
		if wait := off.admit(key(i%26), now); wait != 0 {
			t.Fatalf("pacing off: write %d held back %s", i, wait)
		}
	}
	var none *countPacer
	if none.admit(key(0), now) != 0 {
		t.Error("a nil pacer held a write back")
	}
	none.forget(key(0))
}
