// Package report writes the node's NodeFlowReport: the flows the agent
// observed and the intents programmed on the node, at most once per
// interval and only when it changed (or as a heartbeat).
package report

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/agent/agentmetrics"
	"github.com/palisade-dev/palisade/dataplane/flows"
)

// The agent writes its node's report and reads its Node, whose UID the
// report's owner reference names (the report goes when the Node goes).
// +kubebuilder:rbac:groups=palisade.dev,resources=nodeflowreports,verbs=get;create;patch;update
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get

// FieldManager owns the fields of the NodeFlowReports agents apply.
const FieldManager = "palisade-agent"

// Defaults of the report writer.
const (
	DefaultInterval = 10 * time.Second
	// DefaultHeartbeatEvery: an unchanged report is rewritten every this many
	// intervals, so that a stale report (a dead agent) stands out.
	DefaultHeartbeatEvery = v1alpha1.ReportHeartbeatIntervals
)

// Writer writes the node's NodeFlowReport (named after the node) with
// server-side apply, at most once per Interval: only when its content
// changed, or as a heartbeat every HeartbeatEvery intervals. Writes are per
// interval, never per flow; the report's size is bounded by
// flows.BuildReport.
//
// Why one cluster-scoped object per node: the writes per second are the
// number of nodes divided by the interval, whatever the traffic; each agent
// owns exactly one object (no conflicts between nodes, no read-modify-write
// on shared intents); the controller aggregates all reports onto each
// intent's status; and the owner reference to the Node removes the report
// with its node.
type Writer struct {
	// Client applies reports and gets the Node; it should not be a cached
	// client (the agent may get nodes, not list or watch them).
	Client   client.Client
	NodeName string
	// Interval between two report decisions; DefaultInterval if zero.
	Interval time.Duration
	// HeartbeatEvery; DefaultHeartbeatEvery if zero.
	HeartbeatEvery int
	// Aggregator holds the flows of the window.
	Aggregator *flows.Aggregator
	// Programmed returns the intents programmed on the node (agent.Agent.Programmed).
	Programmed func() []v1alpha1.ProgrammedIntent
	// Ready, when set, holds reports back until it is true (the agent's first
	// sync): before it, the node's programmed intents are not known.
	Ready func() bool
	// ExtraDropped, when set, counts observations lost before the aggregator
	// (the verdict log's overruns).
	ExtraDropped func() int64
	// Metrics, when set, count the write decisions.
	Metrics *agentmetrics.Metrics

	kicks    chan struct{}
	kickOnce sync.Once
	started  time.Time
	lastAt   time.Time
	last     *v1alpha1.NodeFlowReportSpec
	skipped  int
	nodeUID  types.UID
	nodeSeen bool
	// decisions counts the report decisions made (written, unchanged or
	// failed).
	decisions atomic.Int64
}

// Decisions is the number of report decisions made so far (written,
// unchanged or failed): a test that waits for it to grow knows that the
// writer has acted on what happened before.
func (w *Writer) Decisions() int64 { return w.decisions.Load() }

// NeedLeaderElection: every node reports for itself.
func (w *Writer) NeedLeaderElection() bool { return false }

// Start writes reports until ctx ends (manager.Runnable).
func (w *Writer) Start(ctx context.Context) error {
	if w.NodeName == "" {
		return errors.New("report writer: node name is empty")
	}
	logger := log.FromContext(ctx).WithValues("node", w.NodeName)
	ctx = log.IntoContext(ctx, logger)
	t := time.NewTicker(w.interval())
	defer t.Stop()
	for {
		kicked := false
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.kickChan():
			kicked = true
			// Spaced, so that a run of policy changes costs a few writes.
			if wait := KickSpacing - time.Since(w.lastAt); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
		}
		if _, err := w.tick(ctx, time.Now(), kicked); err != nil {
			logger.Error(err, "write flow report")
		}
	}
}

// KickSpacing is the shortest time between a write and the next one that
// Kick asks for.
const KickSpacing = 200 * time.Millisecond

// Kick asks for a report now rather than at the next interval: the agent
// calls it when a sync changed the intents programmed on the node, so that
// an intent's Enforced condition follows a change within a fraction of a
// second, not up to a whole interval (10 s by default) later. Writes stay
// bounded: only a changed report is written, and kicks are spaced by
// KickSpacing.
func (w *Writer) Kick() {
	select {
	case w.kickChan() <- struct{}{}:
	default: // one is pending already
	}
}

func (w *Writer) kickChan() chan struct{} {
	w.kickOnce.Do(func() { w.kicks = make(chan struct{}, 1) })
	return w.kicks
}

func (w *Writer) interval() time.Duration {
	if w.Interval <= 0 {
		return DefaultInterval
	}
	return w.Interval
}

// Tick makes one interval's decision at now and tells whether it wrote.
func (w *Writer) Tick(ctx context.Context, now time.Time) (bool, error) {
	return w.tick(ctx, now, false)
}

// tick writes the report if it changed, or as the heartbeat; a kicked tick
// writes only a changed report and does not count towards the heartbeat.
func (w *Writer) tick(ctx context.Context, now time.Time, kicked bool) (bool, error) {
	if w.started.IsZero() {
		w.started = now
	}
	if w.Ready != nil && !w.Ready() {
		return false, nil
	}
	defer w.decisions.Add(1)
	spec := w.build(now)
	heartbeat := w.HeartbeatEvery
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeatEvery
	}
	if w.last != nil && flows.SameContent(w.last, &spec) && (kicked || w.skipped+1 < heartbeat) {
		if !kicked {
			w.skipped++
		}
		w.Metrics.FlowReport(agentmetrics.ReportUnchanged)
		return false, nil
	}
	start := time.Now()
	if err := w.apply(ctx, &spec); err != nil {
		w.Metrics.FlowReport(agentmetrics.ReportFailed)
		return false, err
	}
	w.Metrics.FlowReport(agentmetrics.ReportWritten)
	log.FromContext(ctx).V(1).Info("flow report written", "kicked", kicked, "flows", len(spec.Flows), "intents", len(spec.Intents),
		"built", start.Sub(now), "elapsed", time.Since(start))
	w.last, w.skipped, w.lastAt = &spec, 0, now
	return true, nil
}

func (w *Writer) build(now time.Time) v1alpha1.NodeFlowReportSpec {
	in := flows.ReportInput{NodeName: w.NodeName, Now: now, Interval: w.interval(), WindowStart: w.started}
	if w.Aggregator != nil {
		in.Entries = w.Aggregator.Snapshot(now)
		in.Dropped = w.Aggregator.Dropped()
		if ws := now.Add(-w.Aggregator.Window()); ws.After(in.WindowStart) {
			in.WindowStart = ws
		}
	}
	if w.ExtraDropped != nil {
		in.Dropped += w.ExtraDropped()
	}
	if w.Programmed != nil {
		in.Intents = w.Programmed()
	}
	return flows.BuildReport(in)
}

// apply writes the report with server-side apply. The owner reference to
// the Node is added once the Node is found; a report is written without it
// rather than not at all.
func (w *Writer) apply(ctx context.Context, spec *v1alpha1.NodeFlowReportSpec) error {
	if !w.nodeSeen {
		var node corev1.Node
		err := w.Client.Get(ctx, client.ObjectKey{Name: w.NodeName}, &node)
		switch {
		case err == nil:
			w.nodeUID, w.nodeSeen = node.UID, true
		case apierrors.IsNotFound(err):
			log.FromContext(ctx).Info("node not found; writing the flow report without an owner")
		default:
			return fmt.Errorf("get node: %w", err)
		}
	}
	report := &v1alpha1.NodeFlowReport{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "NodeFlowReport"},
		ObjectMeta: metav1.ObjectMeta{Name: w.NodeName},
		Spec:       *spec,
	}
	if w.nodeSeen {
		report.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: w.NodeName, UID: w.nodeUID}}
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(report)
	if err != nil {
		return fmt.Errorf("convert report: %w", err)
	}
	u := &unstructured.Unstructured{Object: obj}
	// A typed object always carries creationTimestamp: null; applying it
	// would claim a field the server owns.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	if err := w.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply nodeflowreport %s: %w", w.NodeName, err)
	}
	return nil
}
