package agent

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"
)

// loop is a bounded-frequency runner: at most one sync per MinInterval, at
// least one per MaxInterval, retries with exponential backoff after errors.
func (a *Agent) loop(ctx context.Context) error {
	logger := log.FromContext(ctx)
	backoff := time.Duration(0)
	periodic := time.NewTimer(a.MaxInterval)
	defer periodic.Stop()
	var last time.Time
	var lastTook time.Duration
	for {
		var retry <-chan time.Time
		if backoff > 0 {
			retry = time.After(backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.trigger:
		case <-retry:
		case <-periodic.C:
		}
		if wait := syncSpacing(a.MinInterval, lastTook) - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		// Events that arrived while waiting are covered by this sync.
		select {
		case <-a.trigger:
		default:
		}
		last = time.Now()
		err := a.SyncOnce(ctx)
		lastTook = time.Since(last)
		if err != nil {
			backoff = min(max(2*backoff, a.MinInterval), 30*time.Second)
			logger.Error(err, "sync failed", "retryIn", backoff)
		} else {
			backoff = 0
		}
		periodic.Reset(a.MaxInterval)
	}
}

// syncSpacing is the least time between the starts of two syncs: the
// minimum interval, or twice the duration of the last sync when that is
// longer. A full sync of a big cluster takes hundreds of milliseconds
// (10,000 pods and 5,000 policies: 300-500 ms on a 2-core machine); under
// a steady stream of pod events, syncing back to back keeps the agent busy
// on most of a core, starving the API server and the controller it shares
// the node with. Waiting as long as the sync took caps the agent at half a
// core and lets more events be coalesced into each sync, for at most one
// sync's duration of extra latency.
func syncSpacing(minInterval, lastTook time.Duration) time.Duration {
	return max(minInterval, 2*lastTook)
}
