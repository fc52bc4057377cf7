//go:build reliability

package reliability

import (
	"sync"
	"sync/atomic"
	"time"
)

// prober opens a new connection on every pair every 100ms in the
// background and counts forbidden successes and allowed failures.
type prober struct {
	stop                  chan struct{}
	wg                    sync.WaitGroup
	attempts, allowedRuns atomic.Int64
	forbidden, allowedBad atomic.Int64
}

func startProber() *prober {
	p := &prober{stop: make(chan struct{})}
	for _, pr := range pairs {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-p.stop:
					return
				case <-tick.C:
				}
				ok := probeOne(pr)
				p.attempts.Add(1)
				if pr.Allowed {
					p.allowedRuns.Add(1)
				}
				if ok && !pr.Allowed {
					p.forbidden.Add(1)
				} else if !ok && pr.Allowed {
					p.allowedBad.Add(1)
				}
			}
		}()
	}
	return p
}

// finish stops the prober and returns its figures.
func (p *prober) finish() map[string]any {
	close(p.stop)
	p.wg.Wait()
	rate := 0.0
	if n := p.allowedRuns.Load(); n > 0 {
		rate = float64(p.allowedBad.Load()) / float64(n)
	}
	return map[string]any{
		"probes":              p.attempts.Load(),
		"forbiddenSuccesses":  p.forbidden.Load(),
		"allowedFailures":     p.allowedBad.Load(),
		"allowedProbes":       p.allowedRuns.Load(),
		"allowedFailureRatio": rate,
	}
}
