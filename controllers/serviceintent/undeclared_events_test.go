package serviceintent

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func TestUndeclaredEventsRateLimit(t *testing.T) {
	caller := func(ip string) v1alpha1.UndeclaredCaller {
		return v1alpha1.UndeclaredCaller{Source: v1alpha1.FlowEndpoint{IP: ip}, Protocol: "TCP", Port: 443, Verdict: v1alpha1.VerdictDropped, Count: 1}
	}
	orders, payments := types.NamespacedName{Namespace: "shop", Name: "orders"}, types.NamespacedName{Namespace: "shop", Name: "payments"}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var e undeclaredEvents
	steps := []struct {
		name     string
		intent   types.NamespacedName
		fresh    []v1alpha1.UndeclaredCaller
		after    time.Duration
		wantMsg  string // substring; empty: no event
		wantWait time.Duration
	}{
		{"first new caller: event at once", orders, []v1alpha1.UndeclaredCaller{caller("198.51.100.1")}, 0, "198.51.100.1 → 443/TCP Dropped", 0},
		{"nothing new: nothing", orders, nil, time.Second, "", 0},
		{"another within the minute: held back", orders, []v1alpha1.UndeclaredCaller{caller("198.51.100.2")}, 10 * time.Second, "", 50 * time.Second},
		{"other intents have their own limit", payments, []v1alpha1.UndeclaredCaller{caller("198.51.100.3")}, 11 * time.Second, "198.51.100.3", 0},
		{"four more, still held back", orders, []v1alpha1.UndeclaredCaller{caller("198.51.100.4"), caller("198.51.100.5"), caller("198.51.100.6"), caller("198.51.100.7")}, 30 * time.Second, "", 30 * time.Second},
		{"a minute later: one event for all held back", orders, nil, time.Minute, "198.51.100.2 → 443/TCP Dropped ×1; 198.51.100.4 → 443/TCP Dropped ×1; 198.51.100.5 → 443/TCP Dropped ×1 and 2 more", 0},
		{"announced: nothing pending", orders, nil, 2 * time.Minute, "", 0},
	}
	for _, s := range steps {
		msg, wait := e.add(s.intent, s.fresh, t0.Add(s.after))
		if (s.wantMsg == "") != (msg == "") || !strings.Contains(msg, s.wantMsg) || wait != s.wantWait {
			t.Errorf("%s: event %q, wait %v; want %q, %v", s.name, msg, wait, s.wantMsg, s.wantWait)
		}
	}
	e.forget(orders)
	if msg, _ := e.add(orders, []v1alpha1.UndeclaredCaller{caller("198.51.100.8")}, t0.Add(time.Minute+time.Second)); msg == "" {
		t.Error("a forgotten intent starts afresh")
	}
}
