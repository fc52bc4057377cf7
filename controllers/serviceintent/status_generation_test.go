package serviceintent_test

import (
	"fmt"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers"
	"github.com/palisade-dev/palisade/controllers/internal/controllertest"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// TestObservedGenerationOnlyOnSuccess: a reconcile whose apply fails (the
// API server rejects the policy) records the failure on status, for the
// new generation, but leaves observedGeneration at the last generation
// reconciled in full; when the apply succeeds again it catches up.
func TestObservedGenerationOnlyOnSuccess(t *testing.T) {
	const rejected = "reject-me"
	h := controllertest.Start(t, func(o *controllers.Options) {
		o.Compile = func(in compiler.Input) ([]networkingv1.NetworkPolicy, error) {
			out := compiler.Compile(in)
			for _, c := range in.Callers {
				if c.Name == rejected {
					for i := range out {
						// Not a policy type: the API server's validation rejects it.
						out[i].Spec.PolicyTypes = append(out[i].Spec.PolicyTypes, "Bogus")
					}
				}
			}
			return out, nil
		}
	})
	ns, name := "obsgen", "orders"
	h.Namespace(t, ns, false)
	h.Pod(t, ns, "orders-1", map[string]string{"app": "orders"})
	h.Intent(t, ns, name, v1alpha1.ServiceIntentSpec{
		Target:  v1alpha1.Target{PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "orders"}}},
		Callers: []v1alpha1.Caller{{Name: "frontend", PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "frontend"}}, Ports: port(8080)}},
	})
	si := h.ExpectCondition(t, ns, name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	good := si.Generation

	h.UpdateIntent(t, ns, name, func(si *v1alpha1.ServiceIntent) {
		si.Spec.Callers = append(si.Spec.Callers, v1alpha1.Caller{Name: rejected,
			PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "batch"}}, Ports: port(8080)})
	})
	// Wait for the failed reconcile of the new generation to be recorded.
	controllertest.Eventually(t, "apply failure recorded", func() error {
		si = h.GetIntent(t, ns, name)
		c := controllertest.Condition(si, v1alpha1.ConditionPolicyApplied)
		if c == nil || c.Reason != v1alpha1.ReasonApplyFailed || c.ObservedGeneration != si.Generation {
			return fmt.Errorf("PolicyApplied %+v at generation %d", c, si.Generation)
		}
		return nil
	})
	if si.Generation == good {
		t.Fatalf("the update did not move the generation (%d)", good)
	}
	if si.Status.ObservedGeneration != good {
		t.Errorf("observedGeneration %d after a failed reconcile of generation %d, want %d (the last one reconciled in full)",
			si.Status.ObservedGeneration, si.Generation, good)
	}
	if c := controllertest.Condition(si, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "Bogus") {
		t.Errorf("Ready %s (%s), want False naming the rejected value", c.Status, c.Message)
	}

	h.UpdateIntent(t, ns, name, func(si *v1alpha1.ServiceIntent) { si.Spec.Callers = si.Spec.Callers[:1] })
	h.ExpectCondition(t, ns, name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
}
