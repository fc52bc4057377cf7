package main

import (
	"testing"
	"time"
)

func TestParsePromAndSum(t *testing.T) {
	text := `# HELP apiserver_request_total x
apiserver_request_total{code="201",resource="pods",verb="POST"} 12
apiserver_request_total{code="200",resource="pods",subresource="status",verb="PUT"} 3
apiserver_request_total{code="200",resource="leases",verb="PUT"} 40
apiserver_request_total{code="200",resource="pods",verb="LIST"} 7
workqueue_depth{name="serviceintent"} 2
`
	s := parseProm(text)
	if got := sumMetric(s, "apiserver_request_total", map[string]string{"resource": "pods"}); got != 22 {
		t.Errorf("pods requests = %v, want 22", got)
	}
	if got := sumMetric(s, "workqueue_depth", map[string]string{"name": "serviceintent"}); got != 2 {
		t.Errorf("depth = %v, want 2", got)
	}
	total, by := writesBetween(map[string]float64{"pods": 10}, map[string]float64{"pods": 12, "pods/status": 3})
	if total != 5 || by["pods"] != 2 || by["pods/status"] != 3 {
		t.Errorf("writesBetween = %v %v", total, by)
	}
}

// TestProberConfirmsFlips checks the probe's bookkeeping: one success
// proves an allow at once; a denial needs denyConfirm failures in a row and
// dates from the first of them.
func TestProberConfirmsFlips(t *testing.T) {
	base := time.Unix(0, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name        string
		outcomes    []bool
		wantAllowed bool
		wantSince   int
	}{
		{"first probe sets the state", []bool{true}, true, 0},
		{"one failure is not a denial", []bool{true, true, false, true}, true, 0},
		{"failures in a row make a denial dated from the first", []bool{true, true, false, false, false}, false, 2},
		{"interrupted failures restart the count", []bool{true, false, false, true, false, false, false}, false, 4},
		{"one success ends a denial", []bool{false, false, true}, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &prober{}
			for i, ok := range tt.outcomes {
				p.record(ok, at(i))
			}
			known, allowed, since := p.state()
			if !known || allowed != tt.wantAllowed || !since.Equal(at(tt.wantSince)) {
				t.Errorf("state = known %v allowed %v since %v, want allowed %v since %v", known, allowed, since.Sub(base), tt.wantAllowed, at(tt.wantSince).Sub(base))
			}
		})
	}
}
