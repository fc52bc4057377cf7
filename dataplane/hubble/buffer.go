package hubble

import (
	"slices"
	"sync"
	"sync/atomic"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/palisade-dev/palisade/dataplane/flows"
)

// DefaultCapacity is the number of flows a Buffer keeps when none is given;
// Hubble in Cilium keeps 4095 by default.
const DefaultCapacity = 4096

// followerQueue is how many flows a follower may lag behind before it loses
// flows. It absorbs bursts while the follower's gRPC stream sends; a client
// slower than that for longer is told how many it lost (a LostEvent).
const followerQueue = 1024

// Buffer keeps the last flows observed on the node in a ring of fixed size
// and hands new ones to followers. It implements flows.Sink: Observe never
// blocks, whatever the readers do, so a stalled Hubble client cannot slow
// the agent's flow pipeline. The flows it holds are shared between readers
// and must not be modified.
type Buffer struct {
	mu   sync.Mutex
	ring []*flowpb.Flow
	next int // where the next flow goes
	full bool
	subs map[*follower]struct{}

	seen atomic.Uint64
	lost atomic.Uint64
}

var _ flows.Sink = (*Buffer)(nil)

// follower receives the flows observed after it subscribed.
type follower struct {
	ch chan *flowpb.Flow
	// lost counts flows dropped because ch was full, since the last time
	// the reader took the count.
	lost atomic.Uint64
}

// NewBuffer returns a buffer that keeps the last capacity flows
// (DefaultCapacity when capacity <= 0).
func NewBuffer(capacity int) *Buffer {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Buffer{
		ring: make([]*flowpb.Flow, capacity),
		subs: map[*follower]struct{}{},
	}
}

// Observe converts f and stores it, overwriting the oldest flow when the
// ring is full, and passes it to every follower that has room for it.
func (b *Buffer) Observe(f *flows.Flow) {
	pf := ToProto(f)
	b.seen.Add(1)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.ring[b.next] = pf
	b.next++
	if b.next == len(b.ring) {
		b.next, b.full = 0, true
	}
	for s := range b.subs {
		select {
		case s.ch <- pf:
		default:
			s.lost.Add(1)
			b.lost.Add(1)
		}
	}
}

// Capacity is the number of flows the buffer keeps.
func (b *Buffer) Capacity() int { return len(b.ring) }

// Len is the number of flows the buffer holds now.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lenLocked()
}

func (b *Buffer) lenLocked() int {
	if b.full {
		return len(b.ring)
	}
	return b.next
}

// Seen is the number of flows observed since the buffer was created.
func (b *Buffer) Seen() uint64 { return b.seen.Load() }

// Lost is the number of flows that followers too slow to take them lost,
// summed over all followers. A metric for the agent.
func (b *Buffer) Lost() uint64 { return b.lost.Load() }

// Followers is the number of followers now subscribed.
func (b *Buffer) Followers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// snapshot returns the flows held, oldest first, and, when follow is set, a
// follower that receives every flow observed after the snapshot: taking both
// under one lock is what makes the backlog and the stream neither overlap
// nor leave a gap. The caller must unsubscribe the follower.
func (b *Buffer) snapshot(follow bool) ([]*flowpb.Flow, *follower) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*flowpb.Flow, 0, b.lenLocked())
	if b.full {
		out = append(out, b.ring[b.next:]...)
	}
	out = append(out, b.ring[:b.next]...)
	if !follow {
		return out, nil
	}
	s := &follower{ch: make(chan *flowpb.Flow, followerQueue)}
	b.subs[s] = struct{}{}
	return out, s
}

func (b *Buffer) unsubscribe(s *follower) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
}

// Namespaces returns the namespaces of the pods in the flows held, sorted.
func (b *Buffer) Namespaces() []string {
	held, _ := b.snapshot(false)
	seen := map[string]struct{}{}
	for _, f := range held {
		for _, ns := range []string{f.GetSource().GetNamespace(), f.GetDestination().GetNamespace()} {
			if ns != "" {
				seen[ns] = struct{}{}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}
