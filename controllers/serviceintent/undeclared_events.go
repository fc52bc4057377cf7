package serviceintent

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers/observe"
)

// undeclaredEventInterval is the least time between two UndeclaredCaller
// events of one intent: a scan that tries a hundred ports must not flood the
// intent's events (nor the API server).
const undeclaredEventInterval = time.Minute

// undeclaredEvents rate-limits the UndeclaredCaller warnings per intent. New
// undeclared callers (not on the previous status) wait in pending until the
// intent's next event is allowed; then one event names them all, so none is
// lost to the limit. It lives in memory: after a restart the status tells
// which callers were known, and at most the pending ones go unannounced.
type undeclaredEvents struct {
	mu      sync.Mutex
	last    map[types.NamespacedName]time.Time
	pending map[types.NamespacedName]*pendingCallers
}

// pendingCallers are the new callers not yet announced: the first few by
// name, the rest counted, so memory stays bounded under a scan.
type pendingCallers struct {
	shown []string
	more  int
}

// add queues the new callers of the intent and returns the message of the
// event to record now, if one is due, or how long until the next may be.
func (e *undeclaredEvents) add(intent types.NamespacedName, fresh []v1alpha1.UndeclaredCaller, now time.Time) (string, time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		e.last, e.pending = map[types.NamespacedName]time.Time{}, map[types.NamespacedName]*pendingCallers{}
	}
	p := e.pending[intent]
	for i := range fresh {
		if p == nil {
			p = &pendingCallers{}
			e.pending[intent] = p
		}
		if len(p.shown) < 3 {
			p.shown = append(p.shown, observe.Describe(&fresh[i]))
		} else {
			p.more++
		}
	}
	if p == nil {
		return "", 0
	}
	if wait := e.last[intent].Add(undeclaredEventInterval).Sub(now); wait > 0 {
		return "", wait
	}
	e.last[intent] = now
	delete(e.pending, intent)
	msg := "new undeclared callers: " + strings.Join(p.shown, "; ")
	if p.more > 0 {
		msg += fmt.Sprintf(" and %d more", p.more)
	}
	return msg, 0
}

// forget drops a deleted intent's state.
func (e *undeclaredEvents) forget(intent types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.last, intent)
	delete(e.pending, intent)
}
