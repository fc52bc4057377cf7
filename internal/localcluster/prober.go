package localcluster

import (
	"maps"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ProbePair is one connection a Prober opens again and again, with the
// verdict the policies in force give it.
type ProbePair struct {
	// Name says which pair it is in the figures, e.g. "x/c -> x/a TCP/80".
	Name    string
	Allowed bool
	// Probe opens one new connection and tells whether it completed.
	Probe func() bool
}

// Prober opens a new connection on every pair at a fixed interval in the
// background, for as long as a fault lasts, and counts forbidden successes
// (a denied pair connected) and allowed failures (an allowed pair did not).
// A probe that takes longer than the interval delays its pair's next one.
type Prober struct {
	stop                  chan struct{}
	stopOnce              sync.Once
	wg                    sync.WaitGroup
	attempts, allowedRuns atomic.Int64
	forbidden, allowedBad atomic.Int64

	mu        sync.Mutex
	wrong     map[string]int64
	lastWrong time.Time
}

// StartProber starts probing every pair every interval.
func StartProber(pairs []ProbePair, interval time.Duration) *Prober {
	p := &Prober{stop: make(chan struct{}), wrong: map[string]int64{}}
	for _, pr := range pairs {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-p.stop:
					return
				case <-tick.C:
				}
				p.count(pr, pr.Probe())
			}
		}()
	}
	return p
}

func (p *Prober) count(pr ProbePair, connected bool) {
	p.attempts.Add(1)
	if pr.Allowed {
		p.allowedRuns.Add(1)
	}
	if connected == pr.Allowed {
		return
	}
	if connected {
		p.forbidden.Add(1)
	} else {
		p.allowedBad.Add(1)
	}
	p.mu.Lock()
	p.wrong[pr.Name]++
	p.lastWrong = time.Now()
	p.mu.Unlock()
}

// Probes is how many probes have completed so far: callers wait on it to
// know traffic is flowing, rather than sleeping.
func (p *Prober) Probes() int64 { return p.attempts.Load() }

// ProbeCounts are a Prober's figures.
type ProbeCounts struct {
	Probes, AllowedProbes               int64
	ForbiddenSuccesses, AllowedFailures int64
	// Wrong counts, per pair name, the probes whose outcome contradicted
	// the pair's verdict.
	Wrong map[string]int64
	// LastWrong is when the last such probe ended (zero if none did).
	LastWrong time.Time
}

// AllowedFailureRatio is allowed failures per allowed probe.
func (c ProbeCounts) AllowedFailureRatio() float64 {
	if c.AllowedProbes == 0 {
		return 0
	}
	return float64(c.AllowedFailures) / float64(c.AllowedProbes)
}

// Figures are the counts under the names the reliability report uses.
func (c ProbeCounts) Figures() map[string]any {
	return map[string]any{
		"probes":              c.Probes,
		"forbiddenSuccesses":  c.ForbiddenSuccesses,
		"allowedFailures":     c.AllowedFailures,
		"allowedProbes":       c.AllowedProbes,
		"allowedFailureRatio": c.AllowedFailureRatio(),
	}
}

// WrongPairs lists the pairs with wrong outcomes as "name: count", sorted.
func (c ProbeCounts) WrongPairs() []string {
	var out []string
	for name, n := range c.Wrong {
		out = append(out, name+": "+strconv.FormatInt(n, 10))
	}
	sort.Strings(out)
	return out
}

// Finish stops the prober, waits for the probes in flight and returns its
// counts. Calling it again returns the same counts.
func (p *Prober) Finish() ProbeCounts {
	p.stopOnce.Do(func() { close(p.stop) })
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProbeCounts{
		Probes: p.attempts.Load(), AllowedProbes: p.allowedRuns.Load(),
		ForbiddenSuccesses: p.forbidden.Load(), AllowedFailures: p.allowedBad.Load(),
		Wrong: maps.Clone(p.wrong), LastWrong: p.lastWrong,
	}
}
