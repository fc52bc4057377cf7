package netnstest

import (
	"context"
	"testing"
	"time"
)

// Reader is a log reader that binds before it reads (flowlog.Reader).
type Reader[E any] interface {
	Run(ctx context.Context, handle func(E)) error
	Ready() <-chan struct{}
}

// StartReader runs r, handing each event to handle, and returns once r has
// bound (whatever is logged from then on reaches it). It fails the test if
// r stops or does not bind within five seconds; r stops when the test ends,
// and an error it stops with then fails the test too.
func StartReader[E any](t testing.TB, r Reader[E], handle func(E)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, handle) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reader: %v", err)
		}
	})
	select {
	case <-r.Ready():
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("reader: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("reader not bound after 5s")
	}
}

// Count lists items (conntrack flows, say) and counts those that match,
// failing the test if the list fails.
func Count[E any](t testing.TB, list func() ([]E, error), match func(E) bool) int {
	t.Helper()
	items, err := list()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, it := range items {
		if match(it) {
			n++
		}
	}
	return n
}
