// Package flowobserver turns the kernel's verdict log into attributed
// flows: each event is matched against the pods and intents of the state
// that was in the kernel when it was logged, then counted for the node's
// NodeFlowReport and handed to the other sinks (Hubble).
package flowobserver

import (
	"context"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/dataplane/agent/agentmetrics"
	"github.com/palisade-dev/palisade/dataplane/flowlog"
	"github.com/palisade-dev/palisade/dataplane/flows"
	"github.com/palisade-dev/palisade/internal/policy"
)

// EventSource is the kernel's verdict log (flowlog.Reader): Update hands it
// each synced state, whose policy keys its log prefixes refer to; Run
// delivers decoded events until ctx ends.
type EventSource interface {
	Update(st *policy.State)
	Run(ctx context.Context, handle func(flowlog.Event)) error
}

// Observer turns the kernel's verdict log into attributed flows for the
// aggregator (and so the NodeFlowReport) and the other sinks (Hubble).
type Observer struct {
	// Events is the verdict log; nil observes nothing (Handle still works).
	Events EventSource
	// Aggregator counts flows for the report.
	Aggregator *flows.Aggregator
	// Sinks get every flow too; they must not block.
	Sinks []flows.Sink
	// Lost, when set, counts the observations the event source lost
	// (exported as palisade_agent_flow_observations_dropped_total{reason="reader"}).
	Lost func() uint64
	// Metrics, when set, count the flows and the lost observations.
	Metrics *agentmetrics.Metrics

	index atomic.Pointer[flows.Index]
}

// Update publishes the attribution index of a synced state, then the state
// to the event source: an event decoded against the new state is always
// attributed with the new index.
func (o *Observer) Update(st *policy.State, ix *flows.Index) {
	o.index.Store(ix)
	if o.Events != nil {
		o.Events.Update(st)
	}
}

// Handle attributes one event and passes the flow on.
func (o *Observer) Handle(ev flowlog.Event) {
	f := o.index.Load().Attribute(ev)
	o.Metrics.Flow(string(f.Verdict), string(f.Direction))
	if o.Aggregator != nil && !o.Aggregator.Add(&f) {
		o.Metrics.ObservationsDropped(agentmetrics.DropTableFull, 1)
	}
	for _, s := range o.Sinks {
		s.Observe(&f)
	}
}

// Run reads the verdict log until ctx ends. A failing reader (NFLOG bind
// refused, socket error) is restarted with backoff: flow observation is
// best effort and never stops enforcement.
func (o *Observer) Run(ctx context.Context) {
	if o.Events == nil {
		return
	}
	logger := log.FromContext(ctx)
	if o.Lost != nil {
		go o.exportLost(ctx)
	}
	backoff := time.Second
	for {
		err := o.Events.Run(ctx, o.Handle)
		if ctx.Err() != nil {
			return
		}
		logger.Error(err, "flow log reader stopped; restarting", "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// exportLost adds the event source's losses to the dropped metric.
func (o *Observer) exportLost(ctx context.Context) {
	var seen uint64
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := o.Lost(); n > seen {
			o.Metrics.ObservationsDropped(agentmetrics.DropReader, n-seen)
			seen = n
		}
	}
}
