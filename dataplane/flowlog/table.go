package flowlog

import (
	"sync"
	"time"

	"github.com/palisade-dev/palisade/dataplane/verdictlog"
	"github.com/palisade-dev/palisade/internal/policy"
)

// prefixTable decodes log prefixes with the table of the current state and,
// for a grace period after a change, the previous one: a packet logged just
// before a sync is often read just after it.
type prefixTable struct {
	mu        sync.RWMutex
	cur, prev map[string]verdictlog.Entry
	prevUntil time.Time
	grace     time.Duration
}

func (t *prefixTable) update(st *policy.State, now time.Time) {
	next := verdictlog.Table(st)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prev, t.prevUntil = t.cur, now.Add(t.grace)
	t.cur = next
}

func (t *prefixTable) lookup(prefix string, now time.Time) (verdictlog.Entry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e, ok := t.cur[prefix]; ok {
		return e, true
	}
	if e, ok := t.prev[prefix]; ok && now.Before(t.prevUntil) {
		return e, true
	}
	return verdictlog.Entry{}, false
}

// event decodes one log message. A prefix that is Palisade's but in no
// table still gives verdict and direction (with no policies); anything else
// is undecodable.
func (t *prefixTable) event(m logMessage, now time.Time) (Event, bool) {
	entry, ok := t.lookup(m.Prefix, now)
	if !ok {
		parsed, _, pok := verdictlog.Parse(m.Prefix)
		if !pok {
			return Event{}, false
		}
		entry = parsed
	}
	pkt, err := decodePacket(m.Payload)
	if err != nil {
		return Event{}, false
	}
	ts := m.Time
	if ts.IsZero() {
		ts = now
	}
	return Event{
		Time:      ts,
		Verdict:   entry.Verdict,
		Direction: entry.Direction,
		Protocol:  pkt.Protocol,
		Src:       pkt.Src,
		Dst:       pkt.Dst,
		SrcPort:   pkt.SrcPort,
		DstPort:   pkt.DstPort,
		Policies:  entry.Policies,
	}, true
}
