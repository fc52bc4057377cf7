package render

import (
	"fmt"
	"strings"

	"github.com/palisade-dev/palisade/internal/policy"
)

// Log prefixes tell the flow log reader (dataplane/flowlog) what a logged
// packet means:
//
//	palisade:<verdict>:<direction>:<id>
//
// verdict is allow, drop or audit; direction is in or eg; id is the first 10
// hex digits of the SHA-256 of the deciding policy keys joined by NUL (the
// allowing policy alone, or the group's sorted policies), the same hash the
// policy and group chains are named with. The longest prefix is 31 bytes:
// well within nft's 127 and iptables' NFLOG limit of 64. Both backends log
// the same prefixes, so one table (LogTable) decodes either.
const LogPrefixStart = "palisade:"

var verdictWords = map[policy.LogVerdict]string{
	policy.LogAllowed: "allow",
	policy.LogDropped: "drop",
	policy.LogAudited: "audit",
}

// LogPrefix is the prefix of a log rule for a decision.
func LogPrefix(v policy.LogVerdict, dir policy.Direction, policies []string) string {
	return fmt.Sprintf("%s%s:%s:%s", LogPrefixStart, verdictWords[v], dirPrefix(dir), LogID(policies))
}

// LogID identifies the deciding policies in a log prefix.
func LogID(policies []string) string {
	return short(hash(strings.Join(policies, "\x00")))
}

// LogEntry is what a log prefix stands for.
type LogEntry struct {
	Verdict   policy.LogVerdict
	Direction policy.Direction
	// Policies are the deciding policy keys (see policy.Decision).
	Policies []string
}

// ParseLogPrefix reads the verdict, direction and id of a log prefix
// without a table, so that a packet logged under a state that is gone
// still tells what happened. The kernel may leave a trailing NUL.
func ParseLogPrefix(prefix string) (e LogEntry, id string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimRight(prefix, "\x00"), LogPrefixStart)
	if !ok {
		return LogEntry{}, "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 || parts[2] == "" {
		return LogEntry{}, "", false
	}
	for v, w := range verdictWords {
		if w == parts[0] {
			e.Verdict = v
		}
	}
	switch parts[1] {
	case "in":
		e.Direction = policy.Ingress
	case "eg":
		e.Direction = policy.Egress
	}
	if e.Verdict == "" || e.Direction == "" {
		return LogEntry{}, "", false
	}
	return e, parts[2], true
}

// LogTable maps every log prefix the rendering of st can emit to what it
// stands for. It is pure and cheap (one entry per policy and direction and
// per group), so the reader rebuilds it on every sync.
func LogTable(st *policy.State) map[string]LogEntry {
	out := map[string]LogEntry{}
	for _, dir := range []policy.Direction{policy.Ingress, policy.Egress} {
		groups := st.Ingress
		if dir == policy.Egress {
			groups = st.Egress
		}
		for _, g := range groups {
			v := policy.LogDropped
			if g.AuditOnly() {
				v = policy.LogAudited
			}
			out[LogPrefix(v, dir, g.Policies)] = LogEntry{Verdict: v, Direction: dir, Policies: g.Policies}
			for _, key := range g.Policies {
				out[LogPrefix(policy.LogAllowed, dir, []string{key})] = LogEntry{Verdict: policy.LogAllowed, Direction: dir, Policies: []string{key}}
			}
		}
	}
	return out
}
