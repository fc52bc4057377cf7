package serviceintent

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// DefaultCountUpdatesPerSecond is the default of Reconciler.CountUpdatesPerSecond.
const DefaultCountUpdatesPerSecond = 50

// countPacer paces status writes that change nothing but an intent's
// selected-pod count. Pod churn moves that count on every pod created,
// deleted or relabelled, and each move costs the API server a status
// update of a custom resource (decode, schema, managed fields, etcd, one
// watch event per watcher): with thousands of intents under pod churn
// those writes take most of the API server's CPU, and every client of it
// waits, the agents included. Any other
// status change (conditions, enforcement, observed traffic, a count that
// reaches or leaves zero, which changes the Ready message) is written at
// once; the count catches up at the pace's rate, one write per intent
// however many times its count moved in between (Cilium dropped its
// per-node policy status for the same reason: status updates that scale
// with the cluster's churn overload the API server).
type countPacer struct {
	limiter *rate.Limiter // nil: no pacing

	mu  sync.Mutex
	due map[client.ObjectKey]*rate.Reservation
}

func newCountPacer(perSecond float64) *countPacer {
	p := &countPacer{due: map[client.ObjectKey]*rate.Reservation{}}
	if perSecond > 0 {
		p.limiter = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)*2))
	}
	return p
}

// admit returns zero when a count-only write of the intent may go now, or
// how long to wait for its turn. The turn is kept across calls: the intent
// asks again when it comes and is let through then.
func (p *countPacer) admit(key client.ObjectKey, now time.Time) time.Duration {
	if p == nil || p.limiter == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.due[key]
	if !ok {
		r = p.limiter.ReserveN(now, 1)
	}
	wait := r.DelayFrom(now)
	if wait <= 0 {
		delete(p.due, key)
		return 0
	}
	p.due[key] = r
	return wait
}

// forget drops the intent's turn: it is gone. A turn is never given back
// to the limiter otherwise. Giving back the turns of intents whose count
// moved back, or that wrote for another reason, left holes the limiter
// does not reclaim while later turns are out (rate.Reservation.CancelAt),
// so under churn the turns would reach ever further into the future; one
// turn per intent bounds the catch-up to intents / rate. An intent
// whose turn passed unused keeps it, and its next count change goes at once
// on the token it was given.
func (p *countPacer) forget(key client.ObjectKey) {
	if p == nil || p.limiter == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.due, key)
}

// countOnly tells whether cur differs from old in the selected-pod count
// and nothing else.
func countOnly(old, cur *v1alpha1.ServiceIntentStatus) bool {
	if old.SelectedPods == cur.SelectedPods {
		return false
	}
	c := *cur
	c.SelectedPods = old.SelectedPods
	return apiequality.Semantic.DeepEqual(*old, c)
}
