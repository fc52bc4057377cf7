package observe

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// enforcement counts the nodes that must program the intent (those running
// its target's running pods) and those whose fresh report lists the current
// generation, or a later one, in the intent's mode.
//
// changedAt is when the controller first saw the generation: kept from the
// previous status while the generation is the same. programmedAt is the
// latest node's programmedAt when all desired nodes first had it, kept
// afterwards, so that a pod scheduled later onto a new node does not move
// the latency of the change.
func enforcement(in Input, fresh []*v1alpha1.NodeFlowReport) (*v1alpha1.EnforcementStatus, metav1.Condition) {
	si := in.Intent
	gen := si.Generation
	mode := si.Spec.Mode
	if mode == "" {
		mode = v1alpha1.ModeEnforce
	}
	desired := desiredNodes(in.TargetPods)

	programmedAt := map[string]time.Time{}
	for _, r := range fresh {
		node := r.Spec.NodeName
		if node == "" {
			node = r.Name
		}
		for _, p := range r.Spec.Intents {
			if p.Namespace == si.Namespace && p.Name == si.Name && p.Generation >= gen && p.Mode == mode {
				programmedAt[node] = p.ProgrammedAt.Time
			}
		}
	}

	st := &v1alpha1.EnforcementStatus{Generation: gen, NodesDesired: int32(min(len(desired), 1<<31-1))}
	prev := si.Status.Enforcement
	if prev != nil && prev.Generation == gen && prev.ChangedAt != nil {
		st.ChangedAt = prev.ChangedAt.DeepCopy()
		st.ProgrammedAt = prev.ProgrammedAt.DeepCopy()
		st.Latency = prev.Latency.DeepCopy()
	} else {
		// in.Now itself, not the whole second the rest of the status works
		// in (that made every latency up to a second too long). Truncated as
		// the API server will store it, so that latency equals programmedAt -
		// changedAt as read back.
		changed := metav1.NewMicroTime(in.Now.Truncate(time.Microsecond))
		st.ChangedAt = &changed
	}

	var waiting []string
	var last time.Time
	for _, node := range desired {
		at, ok := programmedAt[node]
		if !ok {
			waiting = append(waiting, node)
			continue
		}
		st.NodesProgrammed++
		if at.After(last) {
			last = at
		}
	}
	if len(desired) > 0 && len(waiting) == 0 && st.ProgrammedAt == nil {
		at := metav1.NewMicroTime(last.Truncate(time.Microsecond))
		st.ProgrammedAt = &at
		// Agents compile Audit-mode intents themselves and may program them
		// before the controller first sees the generation: no negative latency.
		st.Latency = &metav1.Duration{Duration: max(at.Sub(st.ChangedAt.Time), 0)}
	}
	return st, enforcedCondition(mode, gen, st, waiting)
}

// desiredNodes are the nodes of the running pods, sorted. Host-network pods
// are left out: NetworkPolicy does not apply to them.
func desiredNodes(pods []corev1.Pod) []string {
	seen := map[string]bool{}
	var out []string
	for i := range pods {
		p := &pods[i]
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || p.Spec.HostNetwork || seen[p.Spec.NodeName] {
			continue
		}
		seen[p.Spec.NodeName] = true
		out = append(out, p.Spec.NodeName)
	}
	slices.Sort(out)
	return out
}

func enforcedCondition(mode v1alpha1.IntentMode, gen int64, st *v1alpha1.EnforcementStatus, waiting []string) metav1.Condition {
	verb := "enforce"
	if mode == v1alpha1.ModeAudit {
		verb = "audit"
	}
	c := metav1.Condition{Type: v1alpha1.ConditionEnforced, Status: metav1.ConditionTrue}
	switch {
	case st.NodesDesired == 0:
		c.Reason = v1alpha1.ReasonNoTargetPods
		c.Message = fmt.Sprintf("no running pod is selected, so no node has anything to %s", verb)
	case len(waiting) == 0:
		c.Reason = v1alpha1.ReasonProgrammed
		c.Message = fmt.Sprintf("%d/%d nodes %s generation %d", st.NodesProgrammed, st.NodesDesired, verb, gen)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonProgramming
		shown := waiting[:min(len(waiting), 3)]
		more := ""
		if len(waiting) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(waiting)-len(shown))
		}
		c.Message = fmt.Sprintf("%d/%d nodes %s generation %d; waiting for %s%s",
			st.NodesProgrammed, st.NodesDesired, verb, gen, strings.Join(shown, ", "), more)
	}
	return c
}
