package observe

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// callerStatus adds the observed fields to each caller's resolution and
// lists the unused callers: those whose last connection (or, never seen, the
// intent's creation) is older than the window. lastSeen never moves back: a
// caller seen before keeps its time when the reports' windows move on.
func callerStatus(in Input, obs *observation, now time.Time, window time.Duration) ([]v1alpha1.CallerStatus, []string) {
	previous := map[string]*metav1.Time{}
	for i := range in.Intent.Status.Callers {
		c := &in.Intent.Status.Callers[i]
		previous[c.Name] = c.LastSeen
	}
	out := make([]v1alpha1.CallerStatus, len(in.CallerStatus))
	var unused []string
	for i, st := range in.CallerStatus {
		st.Observed, st.Connections, st.LastSeen = false, 0, previous[st.Name].DeepCopy()
		if i < len(obs.connections) && obs.connections[i] > 0 {
			st.Observed, st.Connections = true, obs.connections[i]
			st.LastSeen = maxTime(st.LastSeen, obs.lastSeen[i])
		}
		since := in.Intent.CreationTimestamp.Time
		if st.LastSeen != nil {
			since = st.LastSeen.Time
		}
		if now.Sub(since) >= window {
			unused = append(unused, st.Name)
		}
		out[i] = st
	}
	if len(out) == 0 {
		out = nil
	}
	return out, unused
}

// trafficConforms is True while no undeclared caller was observed; False
// names the top offenders.
func trafficConforms(top []v1alpha1.UndeclaredCaller, total, reporting int) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionTrafficConforms}
	if total == 0 {
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonNoUndeclaredCallers
		c.Message = fmt.Sprintf("every caller observed is declared (%d nodes reporting)", reporting)
		return c
	}
	c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonUndeclaredCallersObserved
	names := make([]string, 0, 3)
	for i := 0; i < len(top) && i < 3; i++ {
		names = append(names, Describe(&top[i]))
	}
	more := ""
	if total > len(names) {
		more = fmt.Sprintf(" and %d more", total-len(names))
	}
	c.Message = fmt.Sprintf("%d undeclared callers: %s%s", total, strings.Join(names, "; "), more)
	return c
}

// Describe says who called and what happened, for conditions and events:
// "shop/Deployment/evil (pod evil-7d9f, 10.0.0.9) → 8080/TCP Dropped ×12".
func Describe(u *v1alpha1.UndeclaredCaller) string {
	who := identity(u.Source)
	switch {
	case isPod(u.Source) && u.Source.Pod != "" && u.Source.IP != "":
		who += fmt.Sprintf(" (pod %s, %s)", u.Source.Pod, u.Source.IP)
	case isPod(u.Source) && u.Source.Pod != "":
		who += " (pod " + u.Source.Pod + ")"
	}
	return fmt.Sprintf("%s → %s %s ×%d", who, portString(u.Port, u.Protocol), u.Verdict, u.Count)
}
