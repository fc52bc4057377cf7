package serviceintent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers"
	"github.com/palisade-dev/palisade/controllers/internal/controllertest"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// TestPoisonIntent injects compilation faults (a panic and an error) into the
// compile step for some intents: the controller keeps running and serving
// the others, the broken intents' targets are isolated (an ingress policy
// without rules), and their status says Ready=False/CompileFailed with the
// cause. When the fault is gone, the intent recovers.
func TestPoisonIntent(t *testing.T) {
	var faulty atomic.Bool
	faulty.Store(true)
	h := controllertest.Start(t, func(o *controllers.Options) {
		o.Compile = func(in compiler.Input) ([]networkingv1.NetworkPolicy, error) {
			if faulty.Load() {
				switch in.Name {
				case "poison-panic":
					var m map[string]int
					m["boom"]++ // a nil-map write: a real runtime panic, not a test-only one
				case "poison-error":
					return nil, errors.New("injected compile failure")
				}
			}
			return compiler.Compile(in), nil
		}
	})
	ctx := context.Background()
	ns := "poison"
	h.Namespace(t, ns, false)
	h.Pod(t, ns, "orders-1", map[string]string{"app": "orders"})
	h.Pod(t, ns, "payments-1", map[string]string{"app": "payments"})
	h.Pod(t, ns, "ledger-1", map[string]string{"app": "ledger"})

	spec := func(target string) v1alpha1.ServiceIntentSpec {
		return v1alpha1.ServiceIntentSpec{
			Target:  v1alpha1.Target{PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": v1alpha1.LabelValue(target)}}},
			Callers: []v1alpha1.Caller{{Name: "frontend", PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "frontend"}}, Ports: port(8080)}},
		}
	}
	h.Intent(t, ns, "poison-panic", spec("payments"))
	h.Intent(t, ns, "poison-error", spec("ledger"))
	// Created after the poison ones: served only if the controller survived.
	h.Intent(t, ns, "good", spec("orders"))

	si := h.ExpectCondition(t, ns, "good", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	if si.Status.SelectedPods != 1 {
		t.Errorf("good: selectedPods %d, want 1", si.Status.SelectedPods)
	}
	for name, cause := range map[string]string{"poison-panic": "compiler panicked: assignment to entry in nil map", "poison-error": "injected compile failure"} {
		si := h.ExpectCondition(t, ns, name, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonCompileFailed)
		ready := controllertest.Condition(si, v1alpha1.ConditionReady)
		if !strings.Contains(ready.Message, cause) || !strings.Contains(ready.Message, "isolated") {
			t.Errorf("%s: Ready message %q lacks %q and the isolation notice", name, ready.Message, cause)
		}
		if c := controllertest.Condition(si, v1alpha1.ConditionPolicyApplied); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonCompileFailed {
			t.Errorf("%s: PolicyApplied %s/%s", name, c.Status, c.Reason)
		}
		expectEvent(t, h, ns, name, v1alpha1.EventCompileFailed)
	}

	// Enforcement: the good intent's grant is written; each poison target is
	// isolated (selected, no rule) and nothing was granted on its behalf.
	pols := h.Policies(t, ns)
	if p := pols[ns+"/palisade-good"]; p == nil || len(p.Spec.Ingress) != 1 {
		t.Fatalf("good intent's policy: %+v", p)
	}
	for name, target := range map[string]string{"poison-panic": "payments", "poison-error": "ledger"} {
		p := pols[ns+"/palisade-"+name]
		if p == nil {
			t.Fatalf("%s: no isolating policy; policies %v", name, controllertest.Keys(pols))
		}
		if len(p.Spec.Ingress) != 0 || len(p.Spec.Egress) != 0 || p.Spec.PodSelector.MatchLabels["app"] != target ||
			len(p.Spec.PolicyTypes) != 1 || p.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
			t.Errorf("%s: policy is not an ingress deny of app=%s: %+v", name, target, p.Spec)
		}
	}

	// The fault goes away: the next reconcile (any change) heals the intent.
	faulty.Store(false)
	h.UpdateIntent(t, ns, "poison-panic", func(si *v1alpha1.ServiceIntent) { si.Spec.Callers[0].Ports = port(8081) })
	h.ExpectCondition(t, ns, "poison-panic", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	controllertest.Eventually(t, "healed policy", func() error {
		var p networkingv1.NetworkPolicy
		if err := h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "palisade-poison-panic"}, &p); err != nil {
			return err
		}
		if len(p.Spec.Ingress) != 1 {
			return fmt.Errorf("%d ingress rules, want 1", len(p.Spec.Ingress))
		}
		return nil
	})

	t.Run("target selecting no pods opens nothing and says so", func(t *testing.T) {
		ns := "nobody"
		h.Namespace(t, ns, true)
		h.Pod(t, ns, "web-1", map[string]string{"app": "web"})
		h.Pod(t, ns, "frontend-1", map[string]string{"app": "frontend"})
		h.Intent(t, ns, "ghost", spec("ghost"))
		si := h.ExpectCondition(t, ns, "ghost", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
		if si.Status.SelectedPods != 0 {
			t.Errorf("selectedPods %d, want 0", si.Status.SelectedPods)
		}
		if msg := controllertest.Condition(si, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "selects no pods") {
			t.Errorf("Ready message %q does not say the target selects no pods", msg)
		}
		// Nothing is opened: every pod a generated policy grants access to
		// (ingress policies' targets, egress policies' destinations) is a
		// pod of the target, and there is none.
		var pods corev1.PodList
		if err := h.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		var list networkingv1.NetworkPolicyList
		if err := h.Client.List(ctx, &list, client.MatchingLabels{v1alpha1.LabelIntent: "ghost"}); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 0 {
			t.Fatal("no policy written for the intent")
		}
		for _, p := range list.Items {
			sels := []metav1.LabelSelector{}
			if len(p.Spec.Ingress) > 0 {
				sels = append(sels, p.Spec.PodSelector)
			}
			for _, r := range p.Spec.Egress {
				for _, to := range r.To {
					if to.PodSelector == nil {
						t.Fatalf("%s: egress to every pod", p.Name)
					}
					sels = append(sels, *to.PodSelector)
				}
			}
			for _, s := range sels {
				sel, err := metav1.LabelSelectorAsSelector(&s)
				if err != nil {
					t.Fatal(err)
				}
				for _, pod := range pods.Items {
					if sel.Matches(labels.Set(pod.Labels)) {
						t.Errorf("%s opens %s", p.Name, pod.Name)
					}
				}
			}
		}
	})
}
