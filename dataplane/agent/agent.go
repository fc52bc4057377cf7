// Package agent is the node agent's sync loop: it watches NetworkPolicies,
// Namespaces, Pods and ServiceIntents through a controller-runtime cache
// (agentcache), computes the node's policy.State and hands it to a
// dataplane.Backend, coalescing bursts of events into one sync, and reports
// ready after its first successful sync. Its parts live in the packages
// below: audit compiles Audit-mode intents, programmed tracks the intent
// generations in the kernel, flowobserver attributes the verdict log's
// flows, report writes the NodeFlowReport, startup programs the kernel
// before the API server is reachable, agentmetrics counts.
//
// Nothing is programmed before the caches have synced (a partial view would
// open or close the wrong pods), and a failed sync is retried with backoff,
// the backend rebuilding everything on the retry.
package agent

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/agent/agentmetrics"
	"github.com/palisade-dev/palisade/dataplane/agent/flowobserver"
	"github.com/palisade-dev/palisade/dataplane/agent/programmed"
	"github.com/palisade-dev/palisade/internal/policy"
)

// The agent reads what it enforces and, to compile Audit-mode intents
// itself, what the intent resolver reads (Services and workloads, for
// their selectors). It writes only its node's NodeFlowReport (package
// report), never NetworkPolicies, and reads no Secrets.
// +kubebuilder:rbac:groups="",resources=pods;namespaces;services,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=palisade.dev,resources=serviceintents,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets;replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get;list;watch

// Agent keeps one node's dataplane in step with the cluster.
type Agent struct {
	Config
	// Cache is the informer cache the agent reads from; see agentcache.Options.
	Cache cache.Cache
	// Backend programs the kernel.
	Backend dataplane.Backend
	// Flows, when set, receives each synced state for the kernel's verdict
	// log and attributes the flows it reports.
	Flows *flowobserver.Observer
	// Cutter, when set, deletes the conntrack entries of connections that a
	// newly committed state denies: tightening a policy cuts the live
	// connections it forbids instead of letting them run on as
	// "established". Nil keeps established connections.
	Cutter ConnCutter
	// StateFile, when set, receives every committed state, so that a
	// restarted agent (after a node reboot, or while the API server is
	// unreachable) can program its last known good state before its caches
	// sync; see startup.Restore.
	StateFile StateSaver
	// OnProgrammedChange, when set, is called after a sync that changed the
	// intents (or their generations or modes) programmed on the node:
	// report.Writer.Kick, so the change reaches the intents' status at once.
	OnProgrammedChange func()
	// Metrics, when set, count syncs, their failures and cut connections.
	Metrics *agentmetrics.Metrics

	ready   atomic.Bool
	syncs   atomic.Int64
	trigger chan struct{}
	// audit is false when the cache's scheme lacks ServiceIntents.
	audit   bool
	tracker programmed.Tracker
	// lastCommitted is the last state the backend committed (sync loop only).
	lastCommitted *policy.State
	programmed    atomic.Pointer[[]v1alpha1.ProgrammedIntent]
}

// Config is what the sync loop is told: its node and the bounds of its
// pace.
type Config struct {
	// NodeName is the node whose pods the agent protects.
	NodeName string
	// MinInterval is the shortest time between the starts of two syncs:
	// events within it are coalesced into one sync. A sync that took
	// longer than half of it stretches the spacing (see syncSpacing).
	MinInterval time.Duration
	// MaxInterval is the longest time between two syncs even without events
	// (repairs drift).
	MaxInterval time.Duration
}

// Defaults of Config.
const (
	DefaultMinInterval = 100 * time.Millisecond
	DefaultMaxInterval = 5 * time.Minute
)

// Defaults fills the intervals left zero.
func (c *Config) Defaults() {
	if c.MinInterval == 0 {
		c.MinInterval = DefaultMinInterval
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = DefaultMaxInterval
	}
}

// Validate tells every field that is unusable.
func (c Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("agent: NodeName is empty"))
	}
	if c.MinInterval <= 0 {
		errs = append(errs, fmt.Errorf("agent: MinInterval %s: want more than 0", c.MinInterval))
	}
	if c.MaxInterval < c.MinInterval {
		errs = append(errs, fmt.Errorf("agent: MaxInterval %s: want at least MinInterval (%s)", c.MaxInterval, c.MinInterval))
	}
	return errors.Join(errs...)
}

// New returns an agent for cfg, with its defaults filled in, that reads
// cache c and programs backend.
func New(cfg Config, c cache.Cache, backend dataplane.Backend) (*Agent, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Agent{Config: cfg, Cache: c, Backend: backend, trigger: make(chan struct{}, 1)}, nil
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

// Syncs is the number of syncs the backend committed so far. It grows
// before the sync records what it programmed, so a sync counted after an
// observed effect of an earlier one (Programmed, OnProgrammedChange) is a
// later sync.
func (a *Agent) Syncs() int64 { return a.syncs.Load() }

// Programmed returns the intents the last successful sync programmed on
// this node, sorted by namespace and name; nil before the first sync.
func (a *Agent) Programmed() []v1alpha1.ProgrammedIntent {
	if p := a.programmed.Load(); p != nil {
		return *p
	}
	return nil
}
