// Package agent is the node agent's sync loop: it watches NetworkPolicies,
// Namespaces and Pods through a controller-runtime cache, computes the
// node's policy.State and hands it to a dataplane.Backend, coalescing bursts
// of events into one sync.
//
// Nothing is programmed before the caches have synced (a partial view would
// open or close the wrong pods), the agent reports ready only after its first
// successful sync, and a failed sync is retried with backoff, the backend
// rebuilding everything on the retry.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/policy"
)

// The agent reads, never writes. serviceintents are listed for the flow
// reporting that builds on this agent.
// +kubebuilder:rbac:groups="",resources=pods;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=palisade.dev,resources=serviceintents,verbs=get;list;watch

// Agent keeps one node's dataplane in step with the cluster.
type Agent struct {
	// NodeName is the node whose pods the agent protects.
	NodeName string
	// Cache is the informer cache the agent reads from; see CacheOptions.
	Cache cache.Cache
	// Backend programs the kernel.
	Backend dataplane.Backend
	// MinInterval is the shortest time between two syncs: events within it
	// are coalesced into one sync. Default 100ms.
	MinInterval time.Duration
	// MaxInterval is the longest time between two syncs even without events
	// (repairs drift). Default 5 minutes.
	MaxInterval time.Duration

	ready   atomic.Bool
	trigger chan struct{}
}

// NeedLeaderElection: every node runs its own agent.
func (a *Agent) NeedLeaderElection() bool { return false }

// ReadyCheck is a healthz.Checker that passes once a sync has succeeded.
func (a *Agent) ReadyCheck(_ *http.Request) error {
	if !a.ready.Load() {
		return errors.New("no successful sync yet")
	}
	return nil
}

// Ready tells whether a sync has succeeded.
func (a *Agent) Ready() bool { return a.ready.Load() }

// Start runs the loop until ctx ends (manager.Runnable). The kernel state is
// left as it is when it returns: rules stay in place (fail closed).
func (a *Agent) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithValues("node", a.NodeName)
	ctx = log.IntoContext(ctx, logger)
	if a.NodeName == "" {
		return errors.New("agent: node name is empty")
	}
	if a.MinInterval <= 0 {
		a.MinInterval = 100 * time.Millisecond
	}
	if a.MaxInterval <= 0 {
		a.MaxInterval = 5 * time.Minute
	}
	a.trigger = make(chan struct{}, 1)
	for _, obj := range []client.Object{&corev1.Pod{}, &corev1.Namespace{}, &networkingv1.NetworkPolicy{}} {
		inf, err := a.Cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("get informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { a.kick() },
			UpdateFunc: func(any, any) { a.kick() },
			DeleteFunc: func(any) { a.kick() },
		}); err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	if !a.Cache.WaitForCacheSync(ctx) {
		return errors.New("agent: caches did not sync")
	}
	logger.Info("caches synced, starting sync loop")
	a.kick()
	return a.loop(ctx)
}

func (a *Agent) kick() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// loop is a bounded-frequency runner: at most one sync per MinInterval, at
// least one per MaxInterval, retries with exponential backoff after errors.
func (a *Agent) loop(ctx context.Context) error {
	logger := log.FromContext(ctx)
	backoff := time.Duration(0)
	periodic := time.NewTimer(a.MaxInterval)
	defer periodic.Stop()
	var last time.Time
	for {
		var retry <-chan time.Time
		if backoff > 0 {
			retry = time.After(backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.trigger:
		case <-retry:
		case <-periodic.C:
		}
		if wait := a.MinInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		// Events that arrived while waiting are covered by this sync.
		select {
		case <-a.trigger:
		default:
		}
		last = time.Now()
		if err := a.SyncOnce(ctx); err != nil {
			backoff = min(max(2*backoff, a.MinInterval), 30*time.Second)
			logger.Error(err, "sync failed", "retryIn", backoff)
		} else {
			backoff = 0
		}
		periodic.Reset(a.MaxInterval)
	}
}

// SyncOnce computes the desired state from the cache and applies it.
func (a *Agent) SyncOnce(ctx context.Context) error {
	logger := log.FromContext(ctx)
	start := time.Now()
	in, err := a.input(ctx)
	var st policy.State
	if err == nil {
		st, err = safeCompute(policy.Compute, in)
	}
	if err == nil {
		for _, perr := range st.Errors {
			logger.Info("policy partly ignored (fails closed)", "policy", perr.Policy, "reason", perr.Err.Error())
		}
		var stats dataplane.Stats
		stats, err = a.Backend.Sync(ctx, &st)
		if err == nil {
			syncDuration.Observe(time.Since(start).Seconds())
			rulesGauge.Set(float64(stats.Rules))
			elementsGauge.Set(float64(stats.SetElements))
			if !a.ready.Swap(true) {
				logger.Info("first sync done, ready", "rules", stats.Rules, "elements", stats.SetElements, "elapsed", time.Since(start))
			}
			logger.V(1).Info("synced", "full", stats.Full, "rules", stats.Rules, "elements", stats.SetElements, "elapsed", time.Since(start))
			return nil
		}
	}
	syncFailures.Inc()
	return err
}

// safeCompute runs compute and turns a panic into an error. A poison object
// that crashed the model would otherwise crash-loop the agent on every node
// (cilium#14245); as a sync failure it leaves the last good rules in the
// kernel, fails readiness and shows in palisade_agent_sync_failures_total.
func safeCompute(compute func(policy.Input) policy.State, in policy.Input) (st policy.State, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compute policy state: panic: %v", r)
		}
	}()
	return compute(in), nil
}

func (a *Agent) input(ctx context.Context) (policy.Input, error) {
	in := policy.Input{NodeName: a.NodeName}
	var pods corev1.PodList
	if err := a.Cache.List(ctx, &pods); err != nil {
		return in, fmt.Errorf("list pods: %w", err)
	}
	var nss corev1.NamespaceList
	if err := a.Cache.List(ctx, &nss); err != nil {
		return in, fmt.Errorf("list namespaces: %w", err)
	}
	var nps networkingv1.NetworkPolicyList
	if err := a.Cache.List(ctx, &nps); err != nil {
		return in, fmt.Errorf("list networkpolicies: %w", err)
	}
	for i := range pods.Items {
		in.Pods = append(in.Pods, policy.PodFromAPI(&pods.Items[i]))
	}
	for i := range nss.Items {
		in.Namespaces = append(in.Namespaces, policy.NamespaceFromAPI(&nss.Items[i]))
	}
	for i := range nps.Items {
		in.Policies = append(in.Policies, &nps.Items[i])
	}
	return in, nil
}
