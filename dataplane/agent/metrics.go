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
	rulesGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "palisade_agent_rules",
		Help: "Rules the dataplane holds after the last successful sync.",
	})
	elementsGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "palisade_agent_set_elements",
		Help: "Set and map elements the dataplane holds after the last successful sync.",
	})
)

func init() {
	metrics.Registry.MustRegister(syncDuration, syncFailures, rulesGauge, elementsGauge)
}
