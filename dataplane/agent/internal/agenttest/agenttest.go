// Package agenttest holds what the node agent's tests share: a real API
// server with the agent's cache, a backend that records the states it is
// given, and waiting for a condition.
package agenttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/agent/agentcache"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// Env is a real API server with the agent's scheme and an admin client.
type Env struct {
	T      *testing.T
	Ctx    context.Context
	Scheme *runtime.Scheme
	C      client.Client
	// StartCache starts an informer cache with the agent's options.
	StartCache func() cache.Cache
}

// NewEnv starts an API server for t.
func NewEnv(t *testing.T) *Env {
	t.Helper()
	cfg := testenv.Start(t)
	c, scheme := testenv.Client(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &Env{T: t, Ctx: ctx, Scheme: scheme, C: c}
	e.StartCache = func() cache.Cache {
		opts := agentcache.Options()
		opts.Scheme = scheme
		ca, err := cache.New(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = ca.Start(ctx) }()
		return ca
	}
	return e
}

// Create creates obj or fails the test.
func (e *Env) Create(obj client.Object) {
	e.T.Helper()
	if err := e.C.Create(e.Ctx, obj); err != nil {
		e.T.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// RecordingBackend keeps every state the agent synced, in order.
type RecordingBackend struct {
	mu     sync.Mutex
	states []policy.State
}

// Sync records st.
func (b *RecordingBackend) Sync(_ context.Context, st *policy.State) (dataplane.Stats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.states = append(b.states, *st)
	return dataplane.Stats{}, nil
}

// Uninstall does nothing.
func (b *RecordingBackend) Uninstall(context.Context) error { return nil }

// All returns the states synced so far.
func (b *RecordingBackend) All() []policy.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]policy.State(nil), b.states...)
}

// Last returns the last state synced, nil before the first.
func (b *RecordingBackend) Last() *policy.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.states) == 0 {
		return nil
	}
	st := b.states[len(b.states)-1]
	return &st
}

// WaitFor polls cond until it holds or timeout passes (then fails t).
func WaitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
