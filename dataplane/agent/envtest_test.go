package agent_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/agent"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// env is a real API server with the agent's scheme and an admin client.
type env struct {
	t      *testing.T
	ctx    context.Context
	scheme *runtime.Scheme
	c      client.Client
	start  func() cache.Cache
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := testenv.Start(t)
	c, scheme := testenv.Client(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, scheme: scheme, c: c}
	e.start = func() cache.Cache {
		opts := agent.CacheOptions()
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

func (e *env) create(obj client.Object) {
	e.t.Helper()
	if err := e.c.Create(e.ctx, obj); err != nil {
		e.t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// recordingBackend keeps every state the agent synced, in order.
type recordingBackend struct {
	mu     sync.Mutex
	states []policy.State
}

func (b *recordingBackend) Sync(_ context.Context, st *policy.State) (dataplane.Stats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.states = append(b.states, *st)
	return dataplane.Stats{}, nil
}

func (b *recordingBackend) Uninstall(context.Context) error { return nil }

func (b *recordingBackend) all() []policy.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]policy.State(nil), b.states...)
}

func (b *recordingBackend) last() *policy.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.states) == 0 {
		return nil
	}
	st := b.states[len(b.states)-1]
	return &st
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
