package flows

import (
	"net/netip"
	"sync"
	"time"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// Identity is who one side of a flow is, for aggregation: a pod's workload
// (namespace, kind, name), so that the replicas and restarts of a
// Deployment count as one caller; or, for peers that are not pods, the
// address.
type Identity struct {
	Namespace    string
	WorkloadKind string
	WorkloadName string
	// IP is set only for endpoints that are not pods.
	IP netip.Addr
}

// IdentityOf returns the aggregation identity of an endpoint.
func IdentityOf(e Endpoint) Identity {
	if !e.IsPod() {
		return Identity{IP: e.IP}
	}
	return Identity{Namespace: e.Namespace, WorkloadKind: e.WorkloadKind, WorkloadName: e.WorkloadName}
}

// Key is what flows are aggregated by. The source port is not part of it:
// every connection has a new one.
type Key struct {
	Source      Identity
	Destination Identity
	Port        uint16
	Protocol    uint8
	Direction   v1alpha1.FlowDirection
	Verdict     v1alpha1.FlowVerdict
}

// KeyOf returns the aggregation key of a flow.
func KeyOf(f *Flow) Key {
	return Key{
		Source: IdentityOf(f.Source), Destination: IdentityOf(f.Destination),
		Port: f.DestinationPort, Protocol: f.Protocol, Direction: f.Direction, Verdict: f.Verdict,
	}
}

// Entry is the aggregate of the flows with one key.
type Entry struct {
	Key Key
	// Source and Destination are the endpoints of the last flow (pod name
	// and address of the last replica seen).
	Source      Endpoint
	Destination Endpoint
	// Policies and Intents are those of the last flow.
	Policies  []string
	Intents   []string
	Count     int64
	FirstSeen time.Time
	LastSeen  time.Time
}

// Defaults of the agent's flags.
const (
	DefaultMaxEntries = 10000
	DefaultWindow     = time.Hour
)

// pruneEvery bounds how often a full table is scanned for expired entries:
// under a flood of new keys every observation would otherwise pay a full
// scan.
const pruneEvery = time.Second

// Aggregator counts flows per Key with bounded memory: at most MaxEntries
// keys; an observation with a new key that does not fit is dropped and
// counted (Dropped). Entries not seen for the window expire. It is a Sink
// and safe for concurrent use.
type Aggregator struct {
	maxEntries int
	window     time.Duration

	mu        sync.Mutex
	entries   map[Key]*Entry
	dropped   int64
	lastPrune time.Time
}

// NewAggregator returns an aggregator of at most maxEntries keys (default
// DefaultMaxEntries when not positive) that forgets keys not seen for window
// (default DefaultWindow).
func NewAggregator(maxEntries int, window time.Duration) *Aggregator {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if window <= 0 {
		window = DefaultWindow
	}
	return &Aggregator{maxEntries: maxEntries, window: window, entries: map[Key]*Entry{}}
}

// Window is the time after which an unseen key expires.
func (a *Aggregator) Window() time.Duration { return a.window }

// Observe implements Sink.
func (a *Aggregator) Observe(f *Flow) { a.Add(f) }

// Add aggregates one flow and tells whether it fitted. A flow without a
// time counts as observed now.
func (a *Aggregator) Add(f *Flow) bool {
	at := f.Time
	if at.IsZero() {
		at = time.Now()
	}
	k := KeyOf(f)
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.entries[k]
	if !ok {
		if len(a.entries) >= a.maxEntries && at.Sub(a.lastPrune) >= pruneEvery {
			a.pruneLocked(at)
		}
		if len(a.entries) >= a.maxEntries {
			a.dropped++
			return false
		}
		e = &Entry{Key: k, FirstSeen: at}
		a.entries[k] = e
	}
	e.Count++
	if at.After(e.LastSeen) {
		e.LastSeen = at
	}
	if at.Before(e.FirstSeen) {
		e.FirstSeen = at
	}
	e.Source, e.Destination = f.Source, f.Destination
	e.Policies, e.Intents = f.Policies, f.Intents
	return true
}

// Dropped counts the observations that did not fit, since the start.
func (a *Aggregator) Dropped() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dropped
}

// Len is the number of keys held.
func (a *Aggregator) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.entries)
}

// Snapshot forgets the keys not seen within the window before now and
// returns a copy of the others, in no particular order.
func (a *Aggregator) Snapshot(now time.Time) []Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(now)
	out := make([]Entry, 0, len(a.entries))
	for _, e := range a.entries {
		out = append(out, *e)
	}
	return out
}

func (a *Aggregator) pruneLocked(now time.Time) {
	a.lastPrune = now
	cutoff := now.Add(-a.window)
	for k, e := range a.entries {
		if e.LastSeen.Before(cutoff) {
			delete(a.entries, k)
		}
	}
}
