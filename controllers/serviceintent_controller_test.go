package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func svcRef(name string) *v1alpha1.LocalServiceReference {
	return &v1alpha1.LocalServiceReference{Name: name}
}

func port(n int32) []v1alpha1.IntentPort {
	return []v1alpha1.IntentPort{{Port: intstr.FromInt32(n), Protocol: "TCP"}}
}

func TestController(t *testing.T) {
	h := startHarness(t)
	ctx := context.Background()

	t.Run("intent lifecycle in a zero-trust namespace", func(t *testing.T) {
		ns := "life"
		h.namespace(t, ns, true)
		h.service(t, ns, "orders", map[string]string{"app": "orders"})
		h.service(t, ns, "checkout", map[string]string{"app": "checkout"})
		h.pod(t, ns, "orders-1", map[string]string{"app": "orders"})
		h.pod(t, ns, "orders-2", map[string]string{"app": "orders"})
		h.intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{
			Target: v1alpha1.Target{ServiceRef: svcRef("orders")},
			Callers: []v1alpha1.Caller{
				{ServiceRef: &v1alpha1.ServiceReference{Name: "checkout"}, Ports: port(8080)},
				{Name: "partner", IPBlock: &v1alpha1.IPBlock{CIDR: "203.0.113.0/24", Except: []v1alpha1.CIDR{"203.0.113.7/32"}}},
			},
		})
		egress := ns + "/palisade-egress.life.orders.checkout"
		h.expectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline", ns + "/palisade-orders", egress}, ns)

		si := h.expectCondition(t, ns, "orders", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
		if c := condition(si, v1alpha1.ConditionResolved); c.Status != metav1.ConditionTrue {
			t.Errorf("Resolved = %s (%s)", c.Status, c.Message)
		}
		if c := condition(si, v1alpha1.ConditionPolicyApplied); c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonApplied {
			t.Errorf("PolicyApplied = %s/%s", c.Status, c.Reason)
		}
		eventually(t, "selectedPods", func() error {
			if got := h.getIntent(t, ns, "orders").Status.SelectedPods; got != 2 {
				return fmt.Errorf("selectedPods %d, want 2", got)
			}
			return nil
		})
		si = h.getIntent(t, ns, "orders")
		if si.Status.Target != "Service/orders" || si.Status.ResolvedCallers != "2/2" {
			t.Errorf("status target %q callers %q", si.Status.Target, si.Status.ResolvedCallers)
		}
		wantCallers := []v1alpha1.CallerStatus{{Name: "checkout", Kind: "Service", Resolved: true}, {Name: "partner", Kind: "IPBlock", Resolved: true}}
		if !slices.Equal(si.Status.Callers, wantCallers) {
			t.Errorf("status callers %+v, want %+v", si.Status.Callers, wantCallers)
		}
		if !slices.Equal(si.Status.NetworkPolicies, []string{egress, ns + "/palisade-orders"}) {
			t.Errorf("status networkPolicies %v", si.Status.NetworkPolicies)
		}
		if !slices.Contains(si.Finalizers, v1alpha1.Finalizer) {
			t.Errorf("finalizers %v lack %s", si.Finalizers, v1alpha1.Finalizer)
		}

		pols := h.policies(t, ns)
		ingress := pols[ns+"/palisade-orders"]
		if len(ingress.OwnerReferences) != 1 || ingress.OwnerReferences[0].UID != si.UID || ingress.OwnerReferences[0].Controller == nil || !*ingress.OwnerReferences[0].Controller {
			t.Errorf("ingress policy owner references %+v, want the intent as controller", ingress.OwnerReferences)
		}
		if got := ingress.Spec.PodSelector.MatchLabels["app"]; got != "orders" {
			t.Errorf("ingress podSelector %v", ingress.Spec.PodSelector)
		}
		if len(ingress.Spec.Ingress) != 2 {
			t.Fatalf("ingress rules %+v, want 2", ingress.Spec.Ingress)
		}
		for _, l := range []string{v1alpha1.LabelManagedBy, v1alpha1.LabelIntent, v1alpha1.LabelIntentNamespace} {
			if ingress.Labels[l] == "" || pols[egress].Labels[l] == "" {
				t.Errorf("label %s missing", l)
			}
		}
		if !managedBy(ingress, "palisade") {
			t.Errorf("ingress policy not written by field manager palisade: %+v", ingress.ManagedFields)
		}
		if eg := pols[egress].Spec; eg.PodSelector.MatchLabels["app"] != "checkout" || len(eg.Egress) != 1 || eg.Egress[0].Ports[0].Port.IntValue() != 8080 {
			t.Errorf("egress policy spec %+v", eg)
		}
		expectEvent(t, h, ns, "orders", v1alpha1.EventPolicyCreated)

		// Remove a caller: its egress policy goes, the ingress policy shrinks.
		h.updateIntent(t, ns, "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Callers = si.Spec.Callers[1:] })
		h.expectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline", ns + "/palisade-orders"}, ns)
		eventually(t, "one ingress rule", func() error {
			if n := len(h.policies(t, ns)[ns+"/palisade-orders"].Spec.Ingress); n != 1 {
				return fmt.Errorf("%d rules", n)
			}
			return nil
		})

		// Delete: the finalizer removes the policies (envtest has no garbage
		// collector, so this proves the controller does it itself).
		if err := h.c.Delete(ctx, si); err != nil {
			t.Fatal(err)
		}
		h.expectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline"}, ns)
		eventually(t, "intent gone", func() error {
			err := h.c.Get(ctx, client.ObjectKeyFromObject(si), &v1alpha1.ServiceIntent{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there: %v", err)
		})
	})

	t.Run("service selector change re-resolves", func(t *testing.T) {
		ns := "selector"
		h.namespace(t, ns, false)
		h.service(t, ns, "orders", map[string]string{"app": "orders"})
		h.pod(t, ns, "orders-1", map[string]string{"app": "orders"})
		h.intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{ServiceRef: svcRef("orders")}})
		h.expectPolicies(t, []string{ns + "/palisade-orders"}, ns)
		eventually(t, "selectedPods 1", func() error { return selectedPods(h, t, ns, "orders", 1) })
		ingress := h.policies(t, ns)[ns+"/palisade-orders"]
		if len(ingress.Spec.Ingress) != 0 || !slices.Equal(ingress.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			t.Errorf("an intent without callers must deny all ingress: %+v", ingress.Spec)
		}

		var svc corev1.Service
		if err := h.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "orders"}, &svc); err != nil {
			t.Fatal(err)
		}
		svc.Spec.Selector = map[string]string{"app": "orders", "track": "v2"}
		if err := h.c.Update(ctx, &svc); err != nil {
			t.Fatal(err)
		}
		eventually(t, "policy follows the selector", func() error {
			sel := h.policies(t, ns)[ns+"/palisade-orders"].Spec.PodSelector.MatchLabels
			if sel["track"] != "v2" {
				return fmt.Errorf("podSelector %v", sel)
			}
			return nil
		})
		eventually(t, "selectedPods 0", func() error { return selectedPods(h, t, ns, "orders", 0) })
		h.pod(t, ns, "orders-v2", map[string]string{"app": "orders", "track": "v2"})
		eventually(t, "selectedPods 1 again", func() error { return selectedPods(h, t, ns, "orders", 1) })

		// A pod relabelled out of the target, and back in: pod events wake
		// the intents whose target selects the pod on either side.
		relabel := func(track string) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders-v2"}}
			patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"track":"`+track+`"}}}`))
			if err := h.c.Patch(ctx, p, patch); err != nil {
				t.Fatal(err)
			}
		}
		relabel("v3")
		eventually(t, "selectedPods 0 after relabel", func() error { return selectedPods(h, t, ns, "orders", 0) })
		relabel("v2")
		eventually(t, "selectedPods 1 after relabel back", func() error { return selectedPods(h, t, ns, "orders", 1) })
	})

	t.Run("zero-trust label on and off", func(t *testing.T) {
		ns := "zt"
		h.namespace(t, ns, false)
		setLabel := func(value *string) {
			eventually(t, "label namespace", func() error {
				var n corev1.Namespace
				if err := h.c.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
					return err
				}
				if value == nil {
					delete(n.Labels, v1alpha1.LabelZeroTrust)
				} else {
					n.Labels[v1alpha1.LabelZeroTrust] = *value
				}
				return h.c.Update(ctx, &n)
			})
		}
		enforce := v1alpha1.ZeroTrustEnforce
		setLabel(&enforce)
		h.expectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline"}, ns)
		pols := h.policies(t, ns)
		deny := pols[ns+"/palisade-default-deny"].Spec
		if len(deny.PodSelector.MatchLabels) != 0 || len(deny.Ingress) != 0 || len(deny.Egress) != 0 || len(deny.PolicyTypes) != 2 {
			t.Errorf("default-deny spec %+v", deny)
		}
		base := pols[ns+"/palisade-baseline"].Spec
		if len(base.Egress) != 1 || len(base.Egress[0].Ports) != 2 || base.Egress[0].To[0].PodSelector.MatchLabels["k8s-app"] != "kube-dns" ||
			base.Egress[0].To[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kube-system" {
			t.Errorf("baseline spec %+v", base)
		}
		setLabel(nil)
		h.expectPolicies(t, nil, ns)
		other := "audit"
		setLabel(&other)
		time.Sleep(500 * time.Millisecond)
		h.expectPolicies(t, nil, ns)
	})

	t.Run("cross-namespace egress cleanup", func(t *testing.T) {
		h.namespace(t, "store", false)
		h.namespace(t, "clients", true)
		h.service(t, "store", "orders", map[string]string{"app": "orders"})
		h.create(t, deployment("clients", "fraud", map[string]string{"app": "fraud"}))
		fraud := v1alpha1.Caller{WorkloadRef: &v1alpha1.WorkloadReference{Kind: "Deployment", Name: "fraud", Namespace: "clients"}, Ports: []v1alpha1.IntentPort{{Port: intstr.FromString("http"), Protocol: "TCP"}}}
		h.intent(t, "store", "orders", v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{ServiceRef: svcRef("orders")}, Callers: []v1alpha1.Caller{fraud}})
		egress := "clients/palisade-egress.store.orders.fraud"
		zt := []string{"clients/palisade-default-deny", "clients/palisade-baseline"}
		h.expectPolicies(t, append([]string{"store/palisade-orders", egress}, zt...), "store", "clients")
		eg := h.policies(t, "clients")[egress]
		if len(eg.OwnerReferences) != 0 {
			t.Errorf("a cross-namespace policy cannot have an owner reference: %+v", eg.OwnerReferences)
		}
		if p := eg.Spec.Egress[0].Ports[0].Port; p.Type != intstr.String || p.StrVal != "http" {
			t.Errorf("named port not kept: %+v", p)
		}

		// Caller removed: its egress policy in the other namespace goes.
		h.updateIntent(t, "store", "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Callers = nil })
		h.expectPolicies(t, append([]string{"store/palisade-orders"}, zt...), "store", "clients")

		// Caller back, then the caller's namespace leaves zero trust: the
		// egress policy is no longer needed.
		h.updateIntent(t, "store", "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Callers = []v1alpha1.Caller{fraud} })
		h.expectPolicies(t, append([]string{"store/palisade-orders", egress}, zt...), "store", "clients")
		eventually(t, "clients leaves zero trust", func() error {
			var n corev1.Namespace
			if err := h.c.Get(ctx, client.ObjectKey{Name: "clients"}, &n); err != nil {
				return err
			}
			delete(n.Labels, v1alpha1.LabelZeroTrust)
			return h.c.Update(ctx, &n)
		})
		h.expectPolicies(t, []string{"store/palisade-orders"}, "store", "clients")
		eventually(t, "clients back in zero trust", func() error {
			var n corev1.Namespace
			if err := h.c.Get(ctx, client.ObjectKey{Name: "clients"}, &n); err != nil {
				return err
			}
			n.Labels[v1alpha1.LabelZeroTrust] = v1alpha1.ZeroTrustEnforce
			return h.c.Update(ctx, &n)
		})
		h.expectPolicies(t, append([]string{"store/palisade-orders", egress}, zt...), "store", "clients")

		// Intent deleted: the finalizer removes the egress policy elsewhere.
		if err := h.c.Delete(ctx, h.getIntent(t, "store", "orders")); err != nil {
			t.Fatal(err)
		}
		h.expectPolicies(t, zt, "store", "clients")
	})

	t.Run("missing references fail closed", func(t *testing.T) {
		ns := "missing"
		h.namespace(t, ns, false)
		h.intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{
			Target: v1alpha1.Target{ServiceRef: svcRef("orders")},
			Callers: []v1alpha1.Caller{
				{ServiceRef: &v1alpha1.ServiceReference{Name: "ghost"}, Ports: port(80)},
				{Name: "monitoring", PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"role": "monitoring"}}},
			},
		})
		si := h.expectCondition(t, ns, "orders", v1alpha1.ConditionResolved, metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound)
		if c := condition(si, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonTargetNotFound {
			t.Errorf("Ready = %s/%s", c.Status, c.Reason)
		}
		h.expectPolicies(t, nil, ns)

		h.service(t, ns, "orders", map[string]string{"app": "orders"})
		si = h.expectCondition(t, ns, "orders", v1alpha1.ConditionResolved, metav1.ConditionFalse, v1alpha1.ReasonCallerNotFound)
		if si.Status.Callers[0].Resolved || si.Status.Callers[0].Message == "" || !si.Status.Callers[1].Resolved {
			t.Errorf("callers status %+v", si.Status.Callers)
		}
		if si.Status.ResolvedCallers != "1/2" {
			t.Errorf("resolvedCallers %q", si.Status.ResolvedCallers)
		}
		h.expectPolicies(t, []string{ns + "/palisade-orders"}, ns)
		rules := h.policies(t, ns)[ns+"/palisade-orders"].Spec.Ingress
		if len(rules) != 1 || rules[0].From[0].PodSelector.MatchLabels["role"] != "monitoring" {
			t.Errorf("only the resolved caller may be allowed: %+v", rules)
		}
		expectEvent(t, h, ns, "orders", v1alpha1.EventCallerNotFound)

		h.service(t, ns, "ghost", map[string]string{"app": "ghost"})
		h.expectCondition(t, ns, "orders", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
		eventually(t, "two rules", func() error {
			if n := len(h.policies(t, ns)[ns+"/palisade-orders"].Spec.Ingress); n != 2 {
				return fmt.Errorf("%d rules", n)
			}
			return nil
		})
	})

	t.Run("audit mode writes no policy", func(t *testing.T) {
		ns := "auditing"
		h.namespace(t, ns, false)
		h.service(t, ns, "orders", map[string]string{"app": "orders"})
		h.intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{ServiceRef: svcRef("orders")}, Mode: v1alpha1.ModeAudit})
		h.expectCondition(t, ns, "orders", v1alpha1.ConditionPolicyApplied, metav1.ConditionTrue, v1alpha1.ReasonAuditMode)
		h.expectPolicies(t, nil, ns)
		h.updateIntent(t, ns, "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Mode = v1alpha1.ModeEnforce })
		h.expectPolicies(t, []string{ns + "/palisade-orders"}, ns)
		h.updateIntent(t, ns, "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Mode = v1alpha1.ModeAudit })
		h.expectPolicies(t, nil, ns)
	})

	t.Run("a no-op reconcile writes nothing", func(t *testing.T) {
		ns := "noop"
		h.namespace(t, ns, true)
		h.service(t, ns, "orders", map[string]string{"app": "orders"})
		h.service(t, ns, "checkout", map[string]string{"app": "checkout"})
		h.intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{
			Target:  v1alpha1.Target{ServiceRef: svcRef("orders")},
			Callers: []v1alpha1.Caller{{ServiceRef: &v1alpha1.ServiceReference{Name: "checkout"}, Ports: port(8080)}},
		})
		h.expectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline", ns + "/palisade-orders", ns + "/palisade-egress.noop.orders.checkout"}, ns)
		h.expectCondition(t, ns, "orders", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
		time.Sleep(time.Second) // let the reconciles of our own writes settle

		before := resourceVersions(t, h, ns)
		h.writes.reset()
		reconciles := reconcileCount(t, "serviceintent")
		// A pod that the target does not select wakes no intent.
		h.pod(t, ns, "unrelated", map[string]string{"app": "unrelated"})
		time.Sleep(time.Second)
		if n := reconcileCount(t, "serviceintent"); n != reconciles {
			t.Errorf("a pod no target selects caused %v reconciles", n-reconciles)
		}
		// A namespace label change re-triggers the intent.
		eventually(t, "label namespace", func() error {
			var n corev1.Namespace
			if err := h.c.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
				return err
			}
			n.Labels["touched"] = "yes"
			return h.c.Update(ctx, &n)
		})
		eventually(t, "forced reconcile", func() error {
			if reconcileCount(t, "serviceintent") <= reconciles {
				return fmt.Errorf("no reconcile yet")
			}
			return nil
		})
		time.Sleep(500 * time.Millisecond)
		if w := h.writes.list(); len(w) != 0 {
			t.Errorf("a no-op reconcile wrote: %v", w)
		}
		after := resourceVersions(t, h, ns)
		for k, v := range before {
			if after[k] != v {
				t.Errorf("%s changed: resourceVersion %s → %s", k, v, after[k])
			}
		}
	})
}

func selectedPods(h *harness, t *testing.T, ns, name string, want int32) error {
	if got := h.getIntent(t, ns, name).Status.SelectedPods; got != want {
		return fmt.Errorf("selectedPods %d, want %d", got, want)
	}
	return nil
}

func resourceVersions(t *testing.T, h *harness, ns string) map[string]string {
	out := map[string]string{}
	for k, p := range h.policies(t, ns) {
		out[k] = p.ResourceVersion
	}
	var list v1alpha1.ServiceIntentList
	if err := h.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, si := range list.Items {
		out["intent "+si.Name] = si.ResourceVersion
	}
	return out
}

func managedBy(obj metav1.Object, manager string) bool {
	for _, f := range obj.GetManagedFields() {
		if f.Manager == manager && f.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

func expectEvent(t *testing.T, h *harness, ns, intent, reason string) {
	t.Helper()
	eventually(t, "event "+reason, func() error {
		var list eventsv1.EventList
		if err := h.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Reason == reason && e.Regarding.Name == intent && e.Regarding.Kind == "ServiceIntent" {
				return nil
			}
		}
		return fmt.Errorf("no %s event among %d", reason, len(list.Items))
	})
}

func deployment(ns, name string, labels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
			},
		},
	}
}
