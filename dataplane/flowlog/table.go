package flowlog

import (
	"sync"
	"time"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
)

// prefixTable decodes log prefixes with the table of the current state and,
// for a grace period after a change, the previous one: a packet logged just
// before a sync is often read just after it.
type prefixTable struct {
	mu        sync.RWMutex
	cur, prev map[string]render.LogEntry
	prevUntil time.Time
	grace     time.Duration
}

func (t *prefixTable) update(st *policy.State, now time.Time) {
	next := render.LogTable(st)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prev, t.prevUntil = t.cur, now.Add(t.grace)
	t.cur = next
}

func (t *prefixTable) lookup(prefix string, now time.Time) (render.LogEntry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e, ok := t.cur[prefix]; ok {
		return e, true
	}
	if e, ok := t.prev[prefix]; ok && now.Before(t.prevUntil) {
		return e, true
	}
	return render.LogEntry{}, false
}

var verdicts = map[policy.LogVerdict]v1alpha1.FlowVerdict{
	policy.LogAllowed: v1alpha1.VerdictAllowed,
	policy.LogDropped: v1alpha1.VerdictDropped,
	policy.LogAudited: v1alpha1.VerdictAudited,
}

var directions = map[policy.Direction]v1alpha1.FlowDirection{
	policy.Ingress: v1alpha1.FlowIngress,
	policy.Egress:  v1alpha1.FlowEgress,
}

// event decodes one log message. A prefix that is Palisade's but in no
// table still gives verdict and direction (with no policies); anything else
// is undecodable.
func (t *prefixTable) event(m logMessage, now time.Time) (Event, bool) {
	entry, ok := t.lookup(m.Prefix, now)
	if !ok {
		parsed, _, pok := render.ParseLogPrefix(m.Prefix)
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
		Verdict:   verdicts[entry.Verdict],
		Direction: directions[entry.Direction],
		Protocol:  pkt.Protocol,
		Src:       pkt.Src,
		Dst:       pkt.Dst,
		SrcPort:   pkt.SrcPort,
		DstPort:   pkt.DstPort,
		Policies:  entry.Policies,
	}, true
}
