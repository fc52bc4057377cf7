// Package verdictlog is the format of Palisade's verdict log, shared by the
// rules that write it (dataplane/render for nftables, dataplane/iptables) and
// the reader that decodes it (dataplane/flowlog): the NFLOG group and the log
// prefix that says what a logged packet means:
//
//	palisade:<verdict>:<direction>:<id>
//
// verdict is allow, drop or audit; direction is in or eg; id is the first 10
// hex digits of the SHA-256 of the deciding policy keys joined by NUL (the
// allowing policy alone, or the group's sorted policies), the same hash the
// nftables policy and group chains are named with. The longest prefix is 31
// bytes: well within nft's 127 and iptables' NFLOG limit of 64. Both backends
// log the same prefixes, so one table (Table) decodes either.
package verdictlog

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/palisade-dev/palisade/internal/policy"
)

// DefaultGroup is the NFLOG group Palisade logs verdicts to. Any group
// works as long as no other program on the node reads it; this one is far
// from the small numbers tools usually pick.
const DefaultGroup uint16 = 1947

// PrefixStart starts every Palisade log prefix.
const PrefixStart = "palisade:"

var verdictWords = map[policy.LogVerdict]string{
	policy.LogAllowed: "allow",
	policy.LogDropped: "drop",
	policy.LogAudited: "audit",
}

var directionWords = map[policy.Direction]string{
	policy.Ingress: "in",
	policy.Egress:  "eg",
}

// Prefix is the log prefix of a decision.
func Prefix(v policy.LogVerdict, dir policy.Direction, policies []string) string {
	return PrefixStart + verdictWords[v] + ":" + directionWords[dir] + ":" + ID(policies)
}

// ID identifies the deciding policies in a log prefix.
func ID(policies []string) string {
	sum := sha256.Sum256([]byte(strings.Join(policies, "\x00")))
	return hex.EncodeToString(sum[:5])
}

// Entry is what a log prefix stands for.
type Entry struct {
	Verdict   policy.LogVerdict
	Direction policy.Direction
	// Policies are the deciding policy keys (see policy.Decision).
	Policies []string
}

// Parse reads the verdict, direction and id of a log prefix without a
// table, so that a packet logged under a state that is gone still tells
// what happened. The kernel may leave a trailing NUL.
func Parse(prefix string) (e Entry, id string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimRight(prefix, "\x00"), PrefixStart)
	if !ok {
		return Entry{}, "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 || parts[2] == "" {
		return Entry{}, "", false
	}
	for v, w := range verdictWords {
		if w == parts[0] {
			e.Verdict = v
		}
	}
	for d, w := range directionWords {
		if w == parts[1] {
			e.Direction = d
		}
	}
	if e.Verdict == "" || e.Direction == "" {
		return Entry{}, "", false
	}
	return e, parts[2], true
}

// Table maps every log prefix the rendering of st can emit to what it
// stands for. It is pure and cheap (one entry per policy and direction and
// per group), so the reader rebuilds it on every sync.
func Table(st *policy.State) map[string]Entry {
	out := map[string]Entry{}
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
			out[Prefix(v, dir, g.Policies)] = Entry{Verdict: v, Direction: dir, Policies: g.Policies}
			for _, key := range g.Policies {
				out[Prefix(policy.LogAllowed, dir, []string{key})] = Entry{Verdict: policy.LogAllowed, Direction: dir, Policies: []string{key}}
			}
		}
	}
	return out
}
