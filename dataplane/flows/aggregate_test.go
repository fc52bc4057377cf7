package flows

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

var t0 = time.Unix(1_700_000_000, 0)

func podEP(ns, kind, name, pod, ip string) Endpoint {
	return Endpoint{IP: netip.MustParseAddr(ip), Namespace: ns, Pod: pod, WorkloadKind: kind, WorkloadName: name}
}

func TestAggregatorKeys(t *testing.T) {
	web1 := podEP("shop", KindDeployment, "web", "web-1", "10.0.0.1")
	web2 := podEP("shop", KindDeployment, "web", "web-2", "10.0.0.2")
	db := podEP("shop", KindStatefulSet, "db", "db-0", "10.0.0.9")
	ext := Endpoint{IP: netip.MustParseAddr("203.0.113.1")}
	base := Flow{Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictAllowed, Protocol: 6, Source: web1, Destination: db, SourcePort: 1000, DestinationPort: 5432}
	with := func(mod func(*Flow)) Flow { f := base; mod(&f); return f }

	cases := []struct {
		name     string
		flows    []Flow
		wantKeys int
		// wantCount is the count of the base flow's key.
		wantCount int64
	}{
		{"one flow", []Flow{base}, 1, 1},
		{"replicas and source ports aggregate", []Flow{base, with(func(f *Flow) { f.Source = web2; f.SourcePort = 2000 })}, 1, 2},
		{"other port", []Flow{base, with(func(f *Flow) { f.DestinationPort = 5433 })}, 2, 1},
		{"other protocol", []Flow{base, with(func(f *Flow) { f.Protocol = 17 })}, 2, 1},
		{"other verdict", []Flow{base, with(func(f *Flow) { f.Verdict = v1alpha1.VerdictDropped })}, 2, 1},
		{"other direction", []Flow{base, with(func(f *Flow) { f.Direction = v1alpha1.FlowEgress })}, 2, 1},
		{"non-pod sources by address", []Flow{with(func(f *Flow) { f.Source = ext }),
			with(func(f *Flow) { f.Source = Endpoint{IP: netip.MustParseAddr("203.0.113.2")} }), base}, 3, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := NewAggregator(100, time.Hour)
			for i := range c.flows {
				c.flows[i].Time = t0.Add(time.Duration(i) * time.Second)
				if !a.Add(&c.flows[i]) {
					t.Fatalf("flow %d did not fit", i)
				}
			}
			snap := a.Snapshot(t0.Add(time.Minute))
			if len(snap) != c.wantKeys {
				t.Fatalf("%d keys, want %d: %+v", len(snap), c.wantKeys, snap)
			}
			for _, e := range snap {
				if e.Key == KeyOf(&base) && e.Count != c.wantCount {
					t.Errorf("count %d, want %d", e.Count, c.wantCount)
				}
			}
		})
	}

	// First and last seen, and the last replica's endpoint.
	a := NewAggregator(100, time.Hour)
	f1, f2 := base, with(func(f *Flow) { f.Source = web2 })
	f1.Time, f2.Time = t0.Add(5*time.Second), t0.Add(9*time.Second)
	a.Add(&f2)
	a.Add(&f1) // out of order: first seen still moves back
	e := a.Snapshot(t0.Add(time.Minute))[0]
	if !e.FirstSeen.Equal(f1.Time) || !e.LastSeen.Equal(f2.Time) || e.Count != 2 {
		t.Errorf("first %v last %v count %d", e.FirstSeen, e.LastSeen, e.Count)
	}
}

func TestAggregatorPrunesAfterTheWindow(t *testing.T) {
	a := NewAggregator(10, time.Minute)
	for i := range 3 {
		f := Flow{Time: t0.Add(time.Duration(i) * 30 * time.Second), Source: Endpoint{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})}, DestinationPort: 80, Protocol: 6}
		a.Add(&f)
	}
	// At t0+90s the window starts at t0+30s: the flow at t0 is gone.
	if got := len(a.Snapshot(t0.Add(90 * time.Second))); got != 2 {
		t.Fatalf("%d entries after the window, want 2", got)
	}
	if got := len(a.Snapshot(t0.Add(time.Hour))); got != 0 {
		t.Fatalf("%d entries long after, want 0", got)
	}
	// A full table makes room for a new key by pruning expired ones.
	a = NewAggregator(2, time.Minute)
	for i := range 2 {
		f := Flow{Time: t0, Source: Endpoint{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})}}
		a.Add(&f)
	}
	late := Flow{Time: t0.Add(2 * time.Minute), Source: Endpoint{IP: netip.MustParseAddr("10.0.0.99")}}
	if !a.Add(&late) || a.Len() != 1 || a.Dropped() != 0 {
		t.Fatalf("new key after expiry: len %d dropped %d", a.Len(), a.Dropped())
	}
}

// TestDeniedSYNStormIsBounded feeds a million SYNs from distinct sources
// (a spoofed flood) to one pod: the table stays at its bound, every excess
// observation is counted as dropped, and the heap does not grow with the
// flood.
func TestDeniedSYNStormIsBounded(t *testing.T) {
	const max = 10000
	const storm = 1_000_000
	a := NewAggregator(max, time.Hour)
	dst := podEP("shop", KindDeployment, "web", "web-1", "10.0.0.1")
	f := Flow{Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictDropped, Protocol: 6, Destination: dst, DestinationPort: 443}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var before uint64
	for i := range storm {
		if i == 2*max {
			before = heap() // the table is full by now
		}
		f.Time = t0.Add(time.Duration(i) * time.Microsecond)
		f.Source = Endpoint{IP: netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}), Pod: ""}
		f.SourcePort = uint16(i)
		a.Add(&f)
	}
	after := heap()
	if a.Len() != max {
		t.Errorf("table holds %d keys, want the bound %d", a.Len(), max)
	}
	if a.Dropped() != storm-max {
		t.Errorf("dropped %d, want %d", a.Dropped(), storm-max)
	}
	// 980,000 more observations after the table was full: a table that grew
	// would hold ~100 MB more; allow a little noise.
	if after > before+4<<20 {
		t.Errorf("heap grew from %d to %d bytes under the storm", before, after)
	}
	// The flood's existing keys still count.
	f.Source = Endpoint{IP: netip.AddrFrom4([4]byte{100, 0, 0, 1})}
	if !a.Add(&f) {
		t.Error("a known key was refused")
	}
}
