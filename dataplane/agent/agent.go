// Package agent is the node agent's sync loop: it watches NetworkPolicies,
// Namespaces, Pods and ServiceIntents through a controller-runtime cache,
// compiles Audit-mode intents itself (audit.go), computes the node's
// policy.State and hands it to a dataplane.Backend, coalescing bursts of
// events into one sync. After each sync it records which intent
// generations are programmed (programmed.go) and hands the state to the
// kernel's verdict log, whose flows it attributes and aggregates
// (flows.go) and reports once per interval in the node's NodeFlowReport
// (report.go).
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
	"maps"
	"net/http"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/flows"
	"github.com/palisade-dev/palisade/internal/policy"
)

// The agent reads what it enforces and, to compile Audit-mode intents
// itself, what the intent resolver reads (Services and workloads, for
// their selectors). It writes only its node's NodeFlowReport (report.go),
// never NetworkPolicies, and reads no Secrets.
// +kubebuilder:rbac:groups="",resources=pods;namespaces;services,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=palisade.dev,resources=serviceintents,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets;replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get;list;watch

// Agent keeps one node's dataplane in step with the cluster.
type Agent struct {
	// NodeName is the node whose pods the agent protects.
	NodeName string
	// Cache is the informer cache the agent reads from; see CacheOptions.
	Cache cache.Cache
	// Backend programs the kernel.
	Backend dataplane.Backend
	// MinInterval is the shortest time between the starts of two syncs:
	// events within it are coalesced into one sync. Default 100ms. A sync
	// that took longer than half of it stretches the spacing (see
	// syncSpacing).
	MinInterval time.Duration
	// MaxInterval is the longest time between two syncs even without events
	// (repairs drift). Default 5 minutes.
	MaxInterval time.Duration
	// Flows, when set, receives each synced state for the kernel's verdict
	// log and attributes the flows it reports.
	Flows *FlowObserver
	// Cutter, when set, deletes the conntrack entries of connections that a
	// newly committed state denies: tightening a policy cuts the live
	// connections it forbids instead of letting them run on as "established"
	// (issue 7, item 6). Nil keeps established connections.
	Cutter ConnCutter
	// StateFile, when set, receives every committed state, so that a
	// restarted agent (after a node reboot, or while the API server is
	// unreachable) can program its last known good state before its caches
	// sync; see Restore.
	StateFile StateSaver
	// OnProgrammedChange, when set, is called after a sync that changed the
	// intents (or their generations or modes) programmed on the node:
	// ReportWriter.Kick, so the change reaches the intents' status at once.
	OnProgrammedChange func()

	ready   atomic.Bool
	trigger chan struct{}
	// audit is false when the cache's scheme lacks ServiceIntents.
	audit   bool
	tracker programmedTracker
	// lastCommitted is the last state the backend committed (sync loop only).
	lastCommitted *policy.State
	programmed    atomic.Pointer[[]v1alpha1.ProgrammedIntent]
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
		if err := a.watch(ctx, obj); err != nil {
			return err
		}
	}
	a.audit = true
	if err := a.watch(ctx, &v1alpha1.ServiceIntent{}); notRegistered(err) {
		// Audit policies only log and accept: without them nothing is
		// opened or closed, only Audit-mode intents go unreported.
		logger.Error(err, "the scheme has no ServiceIntent: Audit-mode intents are not programmed")
		a.audit = false
	} else if err != nil {
		return err
	}
	if a.audit {
		for _, obj := range resolvedObjects() {
			if err := a.watch(ctx, obj); err != nil {
				return err
			}
		}
	}
	if !a.Cache.WaitForCacheSync(ctx) {
		return errors.New("agent: caches did not sync")
	}
	logger.Info("caches synced, starting sync loop", "audit", a.audit)
	if a.Flows != nil {
		go a.Flows.run(ctx)
	}
	a.kick()
	return a.loop(ctx)
}

// watch starts the informer of obj's type and syncs on its every event.
func (a *Agent) watch(ctx context.Context, obj client.Object) error {
	inf, err := a.Cache.GetInformer(ctx, obj)
	if err != nil {
		return fmt.Errorf("get informer for %T: %w", obj, err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { a.kick() },
		UpdateFunc: func(old, cur any) {
			if specChanged(old, cur) {
				a.kick()
			}
		},
		DeleteFunc: func(any) { a.kick() },
	}); err != nil {
		return fmt.Errorf("watch %T: %w", obj, err)
	}
	return nil
}

// specChanged filters intent updates: the controller writes each intent's
// status every few seconds (observed flows), which changes nothing the agent
// compiles; only a new generation or a deletion does. Other kinds always
// count.
func specChanged(old, cur any) bool {
	o, ok1 := old.(*v1alpha1.ServiceIntent)
	c, ok2 := cur.(*v1alpha1.ServiceIntent)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != c.Generation || !o.DeletionTimestamp.Equal(c.DeletionTimestamp)
}

func notRegistered(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if runtime.IsNotRegisteredError(err) {
			return true
		}
	}
	return false
}

// Programmed returns the intents the last successful sync programmed on
// this node, sorted by namespace and name; nil before the first sync.
func (a *Agent) Programmed() []v1alpha1.ProgrammedIntent {
	if p := a.programmed.Load(); p != nil {
		return *p
	}
	return nil
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
	var lastTook time.Duration
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
		if wait := syncSpacing(a.MinInterval, lastTook) - time.Since(last); wait > 0 {
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
		err := a.SyncOnce(ctx)
		lastTook = time.Since(last)
		if err != nil {
			backoff = min(max(2*backoff, a.MinInterval), 30*time.Second)
			logger.Error(err, "sync failed", "retryIn", backoff)
		} else {
			backoff = 0
		}
		periodic.Reset(a.MaxInterval)
	}
}

// syncSpacing is the least time between the starts of two syncs: the
// minimum interval, or twice the duration of the last sync when that is
// longer. A full sync of a big cluster takes hundreds of milliseconds
// (10,000 pods and 5,000 policies: 300-500 ms on the 2-core reliability
// machine); under a steady stream of pod events, syncing back to back kept
// each node's agent busy on most of a core, starving the API server and the
// controller it shares the node with (reliability scenario 11). Waiting as
// long as the sync took caps the agent at half a core and lets more events
// be coalesced into each sync, for at most one sync's duration of extra
// latency.
func syncSpacing(minInterval, lastTook time.Duration) time.Duration {
	return max(minInterval, 2*lastTook)
}

// SyncOnce computes the desired state from the cache and applies it.
func (a *Agent) SyncOnce(ctx context.Context) error {
	logger := log.FromContext(ctx)
	start := time.Now()
	in, meta, err := a.input(ctx)
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
			logger.V(1).Info("synced", "full", stats.Full, "rules", stats.Rules, "elements", stats.SetElements,
				"auditPolicies", len(in.AuditPolicies), "elapsed", time.Since(start))
			a.committed(&st, meta)
			a.afterCommit(ctx, &st)
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

// syncMeta is what a sync learns beside the policy input: the pods (for
// attribution) and the intent of each policy key.
type syncMeta struct {
	pods []*corev1.Pod
	refs map[string]intentRef
}

func (a *Agent) input(ctx context.Context) (policy.Input, syncMeta, error) {
	in := policy.Input{NodeName: a.NodeName}
	meta := syncMeta{refs: map[string]intentRef{}}
	// The lists share the cache's objects instead of deep-copying them
	// (deep copies and their garbage were 40% of a sync's CPU at 10,000
	// pods): nothing below writes to them, and the informers replace an
	// object on update rather than modify it, so the objects held by the
	// flow index after this sync stay as they were.
	var pods corev1.PodList
	if err := a.Cache.List(ctx, &pods, client.UnsafeDisableDeepCopy); err != nil {
		return in, meta, fmt.Errorf("list pods: %w", err)
	}
	var nss corev1.NamespaceList
	if err := a.Cache.List(ctx, &nss, client.UnsafeDisableDeepCopy); err != nil {
		return in, meta, fmt.Errorf("list namespaces: %w", err)
	}
	var nps networkingv1.NetworkPolicyList
	if err := a.Cache.List(ctx, &nps, client.UnsafeDisableDeepCopy); err != nil {
		return in, meta, fmt.Errorf("list networkpolicies: %w", err)
	}
	for i := range pods.Items {
		in.Pods = append(in.Pods, policy.PodFromAPI(&pods.Items[i]))
		meta.pods = append(meta.pods, &pods.Items[i])
	}
	for i := range nss.Items {
		in.Namespaces = append(in.Namespaces, policy.NamespaceFromAPI(&nss.Items[i]))
	}
	for i := range nps.Items {
		np := &nps.Items[i]
		in.Policies = append(in.Policies, np)
		if ref, ok := enforcedRef(np); ok {
			meta.refs[np.Namespace+"/"+np.Name] = ref
		}
	}
	if !a.audit {
		return in, meta, nil
	}
	var intents v1alpha1.ServiceIntentList
	if err := a.Cache.List(ctx, &intents, client.UnsafeDisableDeepCopy); err != nil {
		return in, meta, fmt.Errorf("list serviceintents: %w", err)
	}
	audit, refs := auditPolicies(ctx, a.Cache, intents.Items, intentsWithPolicies(in.Policies), zeroTrustNamespaces(nss.Items))
	in.AuditPolicies = audit
	maps.Copy(meta.refs, refs)
	return in, meta, nil
}

// committed records what a successful sync put in the kernel: the intents
// programmed, and the state and attribution index for the flow log.
func (a *Agent) committed(st *policy.State, meta syncMeta) {
	programmed := a.tracker.update(programmedIntents(st, meta.refs), time.Now())
	prev := a.programmed.Swap(&programmed)
	if a.OnProgrammedChange != nil && (prev == nil || !sameProgrammed(*prev, programmed)) {
		a.OnProgrammedChange()
	}
	if a.Flows != nil {
		intents := make(map[string]string, len(meta.refs))
		for key, ref := range meta.refs {
			intents[key] = ref.key()
		}
		a.Flows.update(st, flows.NewIndex(a.NodeName, meta.pods, intents))
	}
}
