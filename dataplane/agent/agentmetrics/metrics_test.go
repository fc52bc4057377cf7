package agentmetrics_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/agent/agentmetrics"
)

// TestMetricsAsServed: every metric the agent exports is on the registry it
// is given, under its name; a nil *Metrics records nothing and does not
// panic.
func TestMetricsAsServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := agentmetrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	record := func(m *agentmetrics.Metrics) {
		m.SyncSucceeded(time.Millisecond, dataplane.Stats{Rules: 3, SetElements: 4})
		m.SyncFailed()
		m.ConnectionsCut(2)
		m.Flow("dropped", "ingress")
		m.ObservationsDropped(agentmetrics.DropReader, 5)
		m.FlowReport(agentmetrics.ReportWritten)
	}
	record(nil)
	record(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	want := []string{
		"palisade_agent_connections_cut_total", "palisade_agent_flow_observations_dropped_total",
		"palisade_agent_flow_reports_total", "palisade_agent_flows_total", "palisade_agent_rules",
		"palisade_agent_set_elements", "palisade_agent_sync_duration_seconds", "palisade_agent_sync_failures_total",
	}
	if !slices.Equal(names, want) {
		t.Errorf("metrics %v, want %v", names, want)
	}
	if _, err := agentmetrics.New(reg); err == nil {
		t.Error("registering the metrics twice on one registry succeeded")
	}
}
