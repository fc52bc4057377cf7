package localcluster

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestProberCounts: a denied pair that connects is a forbidden success, an
// allowed pair that does not is an allowed failure, each named in Wrong;
// Finish stops probing and can be called again.
func TestProberCounts(t *testing.T) {
	var deniedCalls atomic.Int64
	pairs := []ProbePair{
		{Name: "allowed ok", Allowed: true, Probe: func() bool { return true }},
		{Name: "allowed blocked", Allowed: true, Probe: func() bool { return false }},
		{Name: "denied blocked", Probe: func() bool { return false }},
		{Name: "denied connected", Probe: func() bool { deniedCalls.Add(1); return true }},
	}
	pr := StartProber(pairs, time.Millisecond)
	for pr.Probes() < 40 {
		time.Sleep(time.Millisecond)
	}
	c := pr.Finish()
	after := deniedCalls.Load()
	if c.Probes < 40 || c.AllowedProbes == 0 || c.AllowedProbes >= c.Probes {
		t.Fatalf("probes %d, allowed probes %d", c.Probes, c.AllowedProbes)
	}
	if c.ForbiddenSuccesses != c.Wrong["denied connected"] || c.ForbiddenSuccesses == 0 {
		t.Errorf("forbidden successes %d, wrong %v", c.ForbiddenSuccesses, c.Wrong)
	}
	if c.AllowedFailures != c.Wrong["allowed blocked"] || c.AllowedFailures == 0 {
		t.Errorf("allowed failures %d, wrong %v", c.AllowedFailures, c.Wrong)
	}
	if len(c.Wrong) != 2 || c.LastWrong.IsZero() {
		t.Errorf("wrong %v, last wrong %s", c.Wrong, c.LastWrong)
	}
	if r := c.AllowedFailureRatio(); r <= 0 || r >= 1 {
		t.Errorf("allowed failure ratio %v", r)
	}
	// Finish has waited for the probing goroutines: none can run now.
	if again := pr.Finish(); again.Probes != c.Probes || deniedCalls.Load() != after {
		t.Errorf("probing went on after Finish: %d probes, then %d", c.Probes, again.Probes)
	}
}
