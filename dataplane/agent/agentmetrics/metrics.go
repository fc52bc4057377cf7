// Package agentmetrics holds the node agent's Prometheus metrics. The
// binary registers them once on the registry its metrics endpoint serves;
// a nil *Metrics records nothing, so the agent's parts run without one in
// tests.
package agentmetrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/dataplane"
)

// Reasons of palisade_agent_flow_observations_dropped_total.
const (
	DropTableFull = "table_full"
	DropReader    = "reader"
)

// Results of palisade_agent_flow_reports_total.
const (
	ReportWritten   = "written"
	ReportUnchanged = "unchanged"
	ReportFailed    = "failed"
)

// Metrics are the agent's metrics.
type Metrics struct {
	syncDuration        prometheus.Histogram
	syncFailures        prometheus.Counter
	connectionsCut      prometheus.Counter
	rules               prometheus.Gauge
	elements            prometheus.Gauge
	flows               *prometheus.CounterVec
	observationsDropped *prometheus.CounterVec
	flowReports         *prometheus.CounterVec
}

// New creates the agent's metrics and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "palisade_agent_sync_duration_seconds",
			Help:    "Time from reading the cache to the kernel transaction's commit, per successful sync.",
			Buckets: []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5},
		}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "palisade_agent_sync_failures_total",
			Help: "Syncs that failed; the next one rebuilds the whole ruleset.",
		}),
		connectionsCut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "palisade_agent_connections_cut_total",
			Help: "Established connections whose conntrack entries were deleted because a policy change denies them.",
		}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "palisade_agent_rules",
			Help: "Rules the dataplane holds after the last successful sync.",
		}),
		elements: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "palisade_agent_set_elements",
			Help: "Set and map elements the dataplane holds after the last successful sync.",
		}),
		flows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_agent_flows_total",
			Help: "Flows observed in the kernel's verdict log: new connections allowed, packets dropped or audited (after the kernel's rate limit).",
		}, []string{"verdict", "direction"}),
		observationsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_agent_flow_observations_dropped_total",
			Help: "Flow observations lost: table_full (the aggregation table was at --flow-table-size), reader (the verdict log overran).",
		}, []string{"reason"}),
		flowReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_agent_flow_reports_total",
			Help: "NodeFlowReport write decisions per report interval: written, unchanged (skipped), failed.",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.syncDuration, m.syncFailures, m.connectionsCut, m.rules, m.elements,
		m.flows, m.observationsDropped, m.flowReports} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register agent metrics: %w", err)
		}
	}
	return m, nil
}

// SyncSucceeded records a successful sync that took d and left stats.
func (m *Metrics) SyncSucceeded(d time.Duration, stats dataplane.Stats) {
	if m == nil {
		return
	}
	m.syncDuration.Observe(d.Seconds())
	m.rules.Set(float64(stats.Rules))
	m.elements.Set(float64(stats.SetElements))
}

// SyncFailed records a failed sync.
func (m *Metrics) SyncFailed() {
	if m != nil {
		m.syncFailures.Inc()
	}
}

// ConnectionsCut records n connections cut after a commit.
func (m *Metrics) ConnectionsCut(n int) {
	if m != nil {
		m.connectionsCut.Add(float64(n))
	}
}

// Flow records one observed flow.
func (m *Metrics) Flow(verdict, direction string) {
	if m != nil {
		m.flows.WithLabelValues(verdict, direction).Inc()
	}
}

// ObservationsDropped records n flow observations lost for reason
// (DropTableFull, DropReader).
func (m *Metrics) ObservationsDropped(reason string, n uint64) {
	if m != nil {
		m.observationsDropped.WithLabelValues(reason).Add(float64(n))
	}
}

// FlowReport records one report decision (ReportWritten, ReportUnchanged,
// ReportFailed).
func (m *Metrics) FlowReport(result string) {
	if m != nil {
		m.flowReports.WithLabelValues(result).Inc()
	}
}
