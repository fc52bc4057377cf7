package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	syncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "palisade_agent_sync_duration_seconds",
		Help:    "Time from reading the cache to the kernel transaction's commit, per successful sync.",
		Buckets: []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5},
	})
	syncFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "palisade_agent_sync_failures_total",
		Help: "Syncs that failed; the next one rebuilds the whole ruleset.",
	})
	connectionsCut = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "palisade_agent_connections_cut_total",
		Help: "Established connections whose conntrack entries were deleted because a policy change denies them.",
	})
	rulesGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "palisade_agent_rules",
		Help: "Rules the dataplane holds after the last successful sync.",
	})
	elementsGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "palisade_agent_set_elements",
		Help: "Set and map elements the dataplane holds after the last successful sync.",
	})
	flowsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "palisade_agent_flows_total",
		Help: "Flows observed in the kernel's verdict log: new connections allowed, packets dropped or audited (after the kernel's rate limit).",
	}, []string{"verdict", "direction"})
	observationsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "palisade_agent_flow_observations_dropped_total",
		Help: "Flow observations lost: table_full (the aggregation table was at --flow-table-size), reader (the verdict log overran).",
	}, []string{"reason"})
	flowReports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "palisade_agent_flow_reports_total",
		Help: "NodeFlowReport write decisions per report interval: written, unchanged (skipped), failed.",
	}, []string{"result"})
)

// Reasons of palisade_agent_flow_observations_dropped_total.
const (
	dropTableFull = "table_full"
	dropReader    = "reader"
)

// Results of palisade_agent_flow_reports_total.
const (
	reportWritten   = "written"
	reportUnchanged = "unchanged"
	reportFailed    = "failed"
)

func init() {
	metrics.Registry.MustRegister(syncDuration, syncFailures, connectionsCut, rulesGauge, elementsGauge, flowsTotal, observationsDropped, flowReports)
}
