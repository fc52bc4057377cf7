package policy

import "slices"

// LogVerdict is what the dataplane logs about a packet in one direction.
type LogVerdict string

const (
	// LogAllowed: a policy rule allowed the new connection.
	LogAllowed LogVerdict = "Allowed"
	// LogDropped: the pod is isolated and no rule allowed the packet.
	LogDropped LogVerdict = "Dropped"
	// LogAudited: the pod is selected by audit policies only and none of
	// their rules allowed the packet; it was accepted.
	LogAudited LogVerdict = "Audited"
)

// Decision is what one direction of the node decided about a packet.
type Decision struct {
	Direction Direction
	Verdict   LogVerdict
	// Policies are the allowing policy (one key) for LogAllowed, or the
	// group's policies for LogDropped and LogAudited.
	Policies []string
}

// Decide tells what the dataplane logs for the first packet of a new
// connection: the egress decision of a local isolated source, then (unless
// that dropped it) the ingress decision of a local isolated destination.
// Pods in no group log nothing. The allowing policy is the first of the
// group's sorted policies that has a matching rule, as the backends check
// them in that order. The packet passes when no decision is LogDropped,
// which is what Allows says.
func (s *State) Decide(p Packet) []Decision {
	var out []Decision
	for _, dir := range []Direction{Egress, Ingress} {
		d, ok := s.decideDir(dir, p)
		if !ok {
			continue
		}
		out = append(out, d)
		if d.Verdict == LogDropped {
			break
		}
	}
	return out
}

func (s *State) decideDir(dir Direction, p Packet) (Decision, bool) {
	groups, self, remote := s.Ingress, p.Dst, p.Src
	if dir == Egress {
		groups, self, remote = s.Egress, p.Src, p.Dst
	}
	for _, g := range groups {
		if !slices.Contains(g.IPs, self) {
			continue
		}
		for _, key := range g.Policies {
			pr := s.policy(key)
			if pr == nil {
				continue
			}
			rules := pr.Ingress
			if dir == Egress {
				rules = pr.Egress
			}
			for _, r := range rules {
				if r.matches(remote, p) {
					return Decision{Direction: dir, Verdict: LogAllowed, Policies: []string{key}}, true
				}
			}
		}
		v := LogDropped
		if g.AuditOnly() {
			v = LogAudited
		}
		return Decision{Direction: dir, Verdict: v, Policies: g.Policies}, true
	}
	return Decision{}, false
}
