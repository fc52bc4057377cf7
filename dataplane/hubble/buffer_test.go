package hubble

import (
	"slices"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/flows"
)

func numbered(i int) *flows.Flow {
	return &flows.Flow{
		Time: t0.Add(time.Duration(i) * time.Millisecond), Verdict: v1alpha1.VerdictAllowed, Protocol: 6,
		Source: peer("10.0.0.1"), Destination: peer("10.0.0.2"), DestinationPort: uint16(i),
	}
}

// heldPorts lists the destination ports of the flows held, oldest first.
func heldPorts(b *Buffer) []int {
	held, _ := b.snapshot(false)
	out := make([]int, 0, len(held))
	for _, f := range held {
		out = append(out, int(f.GetL4().GetTCP().GetDestinationPort()))
	}
	return out
}

func TestBufferKeepsTheLastFlows(t *testing.T) {
	tests := []struct {
		capacity, observed int
		want               []int
	}{
		{capacity: 4, observed: 0, want: []int{}},
		{capacity: 4, observed: 3, want: []int{0, 1, 2}},
		{capacity: 4, observed: 4, want: []int{0, 1, 2, 3}},
		{capacity: 4, observed: 5, want: []int{1, 2, 3, 4}},
		{capacity: 4, observed: 11, want: []int{7, 8, 9, 10}},
		{capacity: 1, observed: 3, want: []int{2}},
	}
	for _, tc := range tests {
		b := NewBuffer(tc.capacity)
		for i := range tc.observed {
			b.Observe(numbered(i))
		}
		if got := heldPorts(b); !slices.Equal(got, tc.want) {
			t.Errorf("capacity %d after %d flows: held %v, want %v", tc.capacity, tc.observed, got, tc.want)
		}
		if b.Len() != len(tc.want) || b.Seen() != uint64(tc.observed) || b.Capacity() != tc.capacity {
			t.Errorf("capacity %d after %d flows: Len %d Seen %d Capacity %d", tc.capacity, tc.observed, b.Len(), b.Seen(), b.Capacity())
		}
	}
}

func TestBufferDefaultCapacity(t *testing.T) {
	if got := NewBuffer(0).Capacity(); got != DefaultCapacity {
		t.Errorf("capacity %d, want %d", got, DefaultCapacity)
	}
}

func TestFollowerReceivesFlowsAfterSubscribing(t *testing.T) {
	b := NewBuffer(8)
	b.Observe(numbered(1))
	held, fol := b.snapshot(true)
	defer b.unsubscribe(fol)
	b.Observe(numbered(2))
	b.Observe(numbered(3))
	if len(held) != 1 {
		t.Fatalf("snapshot held %d flows, want 1", len(held))
	}
	for _, want := range []uint32{2, 3} {
		select {
		case f := <-fol.ch:
			if got := f.GetL4().GetTCP().GetDestinationPort(); got != want {
				t.Errorf("follower got port %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("follower did not get flow %d", want)
		}
	}
	b.unsubscribe(fol)
	b.Observe(numbered(4))
	if b.Followers() != 0 || len(fol.ch) != 0 {
		t.Errorf("unsubscribed follower still fed: %d followers, %d queued", b.Followers(), len(fol.ch))
	}
}

// A follower that never reads must not block Observe; what it misses is
// counted, for it and for the buffer.
func TestSlowFollowerLosesFlowsWithoutBlocking(t *testing.T) {
	b := NewBuffer(16)
	_, slow := b.snapshot(true)
	defer b.unsubscribe(slow)
	const n = followerQueue + 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			b.Observe(numbered(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Observe blocked on a follower that does not read")
	}
	if got := slow.lost.Load(); got != 100 {
		t.Errorf("follower lost %d, want 100", got)
	}
	if b.Lost() != 100 || b.Seen() != n {
		t.Errorf("buffer Lost %d Seen %d, want 100 and %d", b.Lost(), b.Seen(), n)
	}
	// It keeps the oldest flows it had room for.
	first := <-slow.ch
	if got := first.GetL4().GetTCP().GetDestinationPort(); got != 0 {
		t.Errorf("first queued flow has port %d, want 0", got)
	}
}

func TestBufferNamespaces(t *testing.T) {
	if got, want := filledBuffer(0).Namespaces(), []string{"billing", "shop"}; !slices.Equal(got, want) {
		t.Errorf("namespaces %v, want %v", got, want)
	}
	if got := NewBuffer(2).Namespaces(); len(got) != 0 {
		t.Errorf("empty buffer has namespaces %v", got)
	}
}
