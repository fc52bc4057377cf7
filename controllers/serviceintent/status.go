package serviceintent

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers/observe"
	"github.com/palisade-dev/palisade/internal/intent/resolve"
	"github.com/palisade-dev/palisade/internal/textutil"
)

// statusInput is what a reconcile learned, to be written to status.
type statusInput struct {
	res          *resolve.Result
	audit        bool
	selectedPods int32
	policies     []string
	compileErr   error
	applyErr     error
	// observed is what the agents' reports say; nil leaves those fields.
	observed *observe.Result
}

// setStatus computes the intent's status in place from what the reconcile
// learned; writeStatus sets observedGeneration. Condition times only move
// when a condition's status changes.
func setStatus(si *v1alpha1.ServiceIntent, in statusInput) {
	st := &si.Status
	st.Target = in.res.Target
	st.SelectedPods = in.selectedPods
	st.NetworkPolicies = in.policies
	st.Callers = in.res.Callers
	resolved := resolvedCondition(in, &st.ResolvedCallers)
	applied := appliedCondition(in)
	conditions := []metav1.Condition{readyCondition(in, resolved, applied), resolved, applied}
	if o := in.observed; o != nil {
		st.Callers = o.Callers
		st.ObservedCallers = o.ObservedCallers
		st.Denied = o.Denied
		st.UndeclaredCallers = o.UndeclaredCallers
		st.UndeclaredCallersTotal = o.UndeclaredCallersTotal
		st.UnusedCallers = o.UnusedCallers
		st.Enforcement = o.Enforcement
		conditions = append(conditions, o.Enforced, o.TrafficConforms)
	}
	for _, c := range conditions {
		c.ObservedGeneration = si.Generation
		meta.SetStatusCondition(&st.Conditions, c)
	}
}

// resolvedCondition is the Resolved condition; it sets resolvedCallers to
// "resolved/all".
func resolvedCondition(in statusInput, resolvedCallers *string) metav1.Condition {
	n := 0
	var unresolved []string
	for _, c := range in.res.Callers {
		if c.Resolved {
			n++
		} else {
			unresolved = append(unresolved, c.Name)
		}
	}
	*resolvedCallers = fmt.Sprintf("%d/%d", n, len(in.res.Callers))
	resolved := metav1.Condition{Type: v1alpha1.ConditionResolved, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonResolved, Message: "the target and every caller resolved"}
	switch {
	case in.res.TargetMessage != "":
		resolved.Status, resolved.Reason = metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound
		resolved.Message = in.res.TargetMessage + "; no NetworkPolicy is written for this intent"
	case len(unresolved) > 0:
		resolved.Status, resolved.Reason = metav1.ConditionFalse, v1alpha1.ReasonCallerNotFound
		resolved.Message = fmt.Sprintf("callers %s do not resolve and are allowed nothing; the others apply", strings.Join(unresolved, ", "))
	}
	return resolved
}

// appliedCondition is the PolicyApplied condition.
func appliedCondition(in statusInput) metav1.Condition {
	applied := metav1.Condition{Type: v1alpha1.ConditionPolicyApplied, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonApplied, Message: fmt.Sprintf("%d NetworkPolicies in place", len(in.policies))}
	switch {
	case in.compileErr != nil:
		applied.Status, applied.Reason = metav1.ConditionFalse, v1alpha1.ReasonCompileFailed
		applied.Message = textutil.Abbreviate(fmt.Sprintf("compile: %v; the target is isolated (no ingress allowed) until the intent compiles", in.compileErr), 1024)
	case in.applyErr != nil:
		applied.Status, applied.Reason = metav1.ConditionFalse, v1alpha1.ReasonApplyFailed
		applied.Message = textutil.Abbreviate(in.applyErr.Error(), 1024)
	case in.audit:
		applied.Reason = v1alpha1.ReasonAuditMode
		applied.Message = "Audit mode: the controller writes no NetworkPolicy for this intent; nothing is dropped on its behalf"
	}
	return applied
}

// readyCondition is the Ready condition: True, or False with the reason and
// message of the worst of resolved and applied.
func readyCondition(in statusInput, resolved, applied metav1.Condition) metav1.Condition {
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonReady, Message: "the intent is in force"}
	switch {
	case in.audit:
		ready.Message = "the intent is in Audit mode"
	case in.res.TargetMessage == "" && in.selectedPods == 0:
		// Fail closed and say so: the policies are written, but a target
		// that selects no pods protects nothing and opens nothing yet.
		ready.Message = "the intent is in force; its target selects no pods, so it opens nothing"
	}
	// Worst last: a compile failure isolates the target, which matters more
	// than an unresolved caller.
	order := []metav1.Condition{applied, resolved}
	if in.compileErr != nil {
		order = []metav1.Condition{resolved, applied}
	}
	for _, c := range order {
		if c.Status != metav1.ConditionTrue {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, c.Reason, c.Message
		}
	}
	return ready
}

// setFailed records on Ready a reconcile that failed before it computed the
// status.
func setFailed(si *v1alpha1.ServiceIntent, err error) {
	meta.SetStatusCondition(&si.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonReconcileFailed,
		Message: textutil.Abbreviate(err.Error(), 1024), ObservedGeneration: si.Generation,
	})
}
