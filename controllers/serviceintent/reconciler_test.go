package serviceintent_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

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
	"github.com/palisade-dev/palisade/controllers/internal/controllertest"
)

func svcRef(name string) *v1alpha1.LocalServiceReference {
	return &v1alpha1.LocalServiceReference{Name: name}
}

func port(n int32) []v1alpha1.IntentPort {
	return []v1alpha1.IntentPort{{Port: intstr.FromInt32(n), Protocol: "TCP"}}
}

func TestController(t *testing.T) {
	h := controllertest.Start(t)
	ctx := context.Background()

	t.Run("intent lifecycle in a zero-trust namespace", func(t *testing.T) {
		ns := "life"
		h.Namespace(t, ns, true)
		h.Service(t, ns, "orders", map[string]string{"app": "orders"})
		h.Service(t, ns, "checkout", map[string]string{"app": "checkout"})
		h.Pod(t, ns, "orders-1", map[string]string{"app": "orders"})
		h.Pod(t, ns, "orders-2", map[string]string{"app": "orders"})
		h.Intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{
			Target: v1alpha1.Target{ServiceRef: svcRef("orders")},
			Callers: []v1alpha1.Caller{
				{ServiceRef: &v1alpha1.ServiceReference{Name: "checkout"}, Ports: port(8080)},
				{Name: "partner", IPBlock: &v1alpha1.IPBlock{CIDR: "203.0.113.0/24", Except: []v1alpha1.CIDR{"203.0.113.7/32"}}},
			},
		})
		egress := ns + "/palisade-egress.life.orders.checkout"
		h.ExpectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline", ns + "/palisade-orders", egress}, ns)

		si := h.ExpectCondition(t, ns, "orders", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
		if c := controllertest.Condition(si, v1alpha1.ConditionResolved); c.Status != metav1.ConditionTrue {
			t.Errorf("Resolved = %s (%s)", c.Status, c.Message)
		}
		if c := controllertest.Condition(si, v1alpha1.ConditionPolicyApplied); c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonApplied {
			t.Errorf("PolicyApplied = %s/%s", c.Status, c.Reason)
		}
		controllertest.Eventually(t, "selectedPods", func() error {
			if got := h.GetIntent(t, ns, "orders").Status.SelectedPods; got != 2 {
				return fmt.Errorf("selectedPods %d, want 2", got)
			}
			return nil
		})
		si = h.GetIntent(t, ns, "orders")
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

		pols := h.Policies(t, ns)
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
		h.UpdateIntent(t, ns, "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Callers = si.Spec.Callers[1:] })
		h.ExpectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline", ns + "/palisade-orders"}, ns)
		controllertest.Eventually(t, "one ingress rule", func() error {
			if n := len(h.Policies(t, ns)[ns+"/palisade-orders"].Spec.Ingress); n != 1 {
				return fmt.Errorf("%d rules", n)
			}
			return nil
		})

		// Delete: the finalizer removes the policies (envtest has no garbage
		// collector, so this proves the controller does it itself).
		if err := h.Client.Delete(ctx, si); err != nil {
			t.Fatal(err)
		}
		h.ExpectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline"}, ns)
		controllertest.Eventually(t, "intent gone", func() error {
			err := h.Client.Get(ctx, client.ObjectKeyFromObject(si), &v1alpha1.ServiceIntent{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there: %v", err)
		})
	})

	t.Run("service selector change re-resolves", func(t *testing.T) {
		ns := "selector"
		h.Namespace(t, ns, false)
		h.Service(t, ns, "orders", map[string]string{"app": "orders"})
		h.Pod(t, ns, "orders-1", map[string]string{"app": "orders"})
		h.Intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{ServiceRef: svcRef("orders")}})
		h.ExpectPolicies(t, []string{ns + "/palisade-orders"}, ns)
		controllertest.Eventually(t, "selectedPods 1", func() error { return selectedPods(h, t, ns, "orders", 1) })
		ingress := h.Policies(t, ns)[ns+"/palisade-orders"]
		if len(ingress.Spec.Ingress) != 0 || !slices.Equal(ingress.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			t.Errorf("an intent without callers must deny all ingress: %+v", ingress.Spec)
		}

		var svc corev1.Service
		if err := h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "orders"}, &svc); err != nil {
			t.Fatal(err)
		}
		svc.Spec.Selector = map[string]string{"app": "orders", "track": "v2"}
		if err := h.Client.Update(ctx, &svc); err != nil {
			t.Fatal(err)
		}
		controllertest.Eventually(t, "policy follows the selector", func() error {
			sel := h.Policies(t, ns)[ns+"/palisade-orders"].Spec.PodSelector.MatchLabels
			if sel["track"] != "v2" {
				return fmt.Errorf("podSelector %v", sel)
			}
			return nil
		})
		controllertest.Eventually(t, "selectedPods 0", func() error { return selectedPods(h, t, ns, "orders", 0) })
		h.Pod(t, ns, "orders-v2", map[string]string{"app": "orders", "track": "v2"})
		controllertest.Eventually(t, "selectedPods 1 again", func() error { return selectedPods(h, t, ns, "orders", 1) })

		// A pod relabelled out of the target, and back in: pod events wake
		// the intents whose target selects the pod on either side.
		relabel := func(track string) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders-v2"}}
			patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"track":"`+track+`"}}}`))
			if err := h.Client.Patch(ctx, p, patch); err != nil {
				t.Fatal(err)
			}
		}
		relabel("v3")
		controllertest.Eventually(t, "selectedPods 0 after relabel", func() error { return selectedPods(h, t, ns, "orders", 0) })
		relabel("v2")
		controllertest.Eventually(t, "selectedPods 1 after relabel back", func() error { return selectedPods(h, t, ns, "orders", 1) })
	})

	t.Run("zero-trust label on and off", func(t *testing.T) {
		ns := "zt"
		h.Namespace(t, ns, false)
		setLabel := func(value *string) {
			controllertest.Eventually(t, "label namespace", func() error {
				var n corev1.Namespace
				if err := h.Client.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
					return err
				}
				if value == nil {
					delete(n.Labels, v1alpha1.LabelZeroTrust)
				} else {
					n.Labels[v1alpha1.LabelZeroTrust] = *value
				}
				return h.Client.Update(ctx, &n)
			})
		}
		enforce := v1alpha1.ZeroTrustEnforce
		setLabel(&enforce)
		h.ExpectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline"}, ns)
		pols := h.Policies(t, ns)
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
		h.ExpectPolicies(t, nil, ns)
		other := "audit"
		nsReconciles := controllertest.ReconcileCount(t, "zerotrust-namespace")
		setLabel(&other)
		controllertest.Eventually(t, "the namespace is reconciled", func() error {
			if controllertest.ReconcileCount(t, "zerotrust-namespace") <= nsReconciles {
				return fmt.Errorf("no reconcile yet")
			}
			return nil
		})
		controllertest.WaitIdle(t, "zerotrust-namespace")
		h.ExpectPolicies(t, nil, ns)
	})

	t.Run("cross-namespace egress cleanup", func(t *testing.T) {
		h.Namespace(t, "store", false)
		h.Namespace(t, "clients", true)
		h.Service(t, "store", "orders", map[string]string{"app": "orders"})
		h.Create(t, deployment("clients", "fraud", map[string]string{"app": "fraud"}))
		fraud := v1alpha1.Caller{WorkloadRef: &v1alpha1.WorkloadReference{Kind: "Deployment", Name: "fraud", Namespace: "clients"}, Ports: []v1alpha1.IntentPort{{Port: intstr.FromString("http"), Protocol: "TCP"}}}
		h.Intent(t, "store", "orders", v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{ServiceRef: svcRef("orders")}, Callers: []v1alpha1.Caller{fraud}})
		egress := "clients/palisade-egress.store.orders.fraud"
		zt := []string{"clients/palisade-default-deny", "clients/palisade-baseline"}
		h.ExpectPolicies(t, append([]string{"store/palisade-orders", egress}, zt...), "store", "clients")
		eg := h.Policies(t, "clients")[egress]
		if len(eg.OwnerReferences) != 0 {
			t.Errorf("a cross-namespace policy cannot have an owner reference: %+v", eg.OwnerReferences)
		}
		if p := eg.Spec.Egress[0].Ports[0].Port; p.Type != intstr.String || p.StrVal != "http" {
			t.Errorf("named port not kept: %+v", p)
		}

		// Caller removed: its egress policy in the other namespace goes.
		h.UpdateIntent(t, "store", "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Callers = nil })
		h.ExpectPolicies(t, append([]string{"store/palisade-orders"}, zt...), "store", "clients")

		// Caller back, then the caller's namespace leaves zero trust: the
		// egress policy is no longer needed.
		h.UpdateIntent(t, "store", "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Callers = []v1alpha1.Caller{fraud} })
		h.ExpectPolicies(t, append([]string{"store/palisade-orders", egress}, zt...), "store", "clients")
		controllertest.Eventually(t, "clients leaves zero trust", func() error {
			var n corev1.Namespace
			if err := h.Client.Get(ctx, client.ObjectKey{Name: "clients"}, &n); err != nil {
				return err
			}
			delete(n.Labels, v1alpha1.LabelZeroTrust)
			return h.Client.Update(ctx, &n)
		})
		h.ExpectPolicies(t, []string{"store/palisade-orders"}, "store", "clients")
		controllertest.Eventually(t, "clients back in zero trust", func() error {
			var n corev1.Namespace
			if err := h.Client.Get(ctx, client.ObjectKey{Name: "clients"}, &n); err != nil {
				return err
			}
			n.Labels[v1alpha1.LabelZeroTrust] = v1alpha1.ZeroTrustEnforce
			return h.Client.Update(ctx, &n)
		})
		h.ExpectPolicies(t, append([]string{"store/palisade-orders", egress}, zt...), "store", "clients")

		// Intent deleted: the finalizer removes the egress policy elsewhere.
		if err := h.Client.Delete(ctx, h.GetIntent(t, "store", "orders")); err != nil {
			t.Fatal(err)
		}
		h.ExpectPolicies(t, zt, "store", "clients")
	})

	t.Run("missing references fail closed", func(t *testing.T) {
		ns := "missing"
		h.Namespace(t, ns, false)
		h.Intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{
			Target: v1alpha1.Target{ServiceRef: svcRef("orders")},
			Callers: []v1alpha1.Caller{
				{ServiceRef: &v1alpha1.ServiceReference{Name: "ghost"}, Ports: port(80)},
				{Name: "monitoring", PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"role": "monitoring"}}},
			},
		})
		si := h.ExpectCondition(t, ns, "orders", v1alpha1.ConditionResolved, metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound)
		if c := controllertest.Condition(si, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonTargetNotFound {
			t.Errorf("Ready = %s/%s", c.Status, c.Reason)
		}
		h.ExpectPolicies(t, nil, ns)

		h.Service(t, ns, "orders", map[string]string{"app": "orders"})
		si = h.ExpectCondition(t, ns, "orders", v1alpha1.ConditionResolved, metav1.ConditionFalse, v1alpha1.ReasonCallerNotFound)
		if si.Status.Callers[0].Resolved || si.Status.Callers[0].Message == "" || !si.Status.Callers[1].Resolved {
			t.Errorf("callers status %+v", si.Status.Callers)
		}
		if si.Status.ResolvedCallers != "1/2" {
			t.Errorf("resolvedCallers %q", si.Status.ResolvedCallers)
		}
		h.ExpectPolicies(t, []string{ns + "/palisade-orders"}, ns)
		rules := h.Policies(t, ns)[ns+"/palisade-orders"].Spec.Ingress
		if len(rules) != 1 || rules[0].From[0].PodSelector.MatchLabels["role"] != "monitoring" {
			t.Errorf("only the resolved caller may be allowed: %+v", rules)
		}
		expectEvent(t, h, ns, "orders", v1alpha1.EventCallerNotFound)

		h.Service(t, ns, "ghost", map[string]string{"app": "ghost"})
		h.ExpectCondition(t, ns, "orders", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
		controllertest.Eventually(t, "two rules", func() error {
			if n := len(h.Policies(t, ns)[ns+"/palisade-orders"].Spec.Ingress); n != 2 {
				return fmt.Errorf("%d rules", n)
			}
			return nil
		})
	})

	t.Run("audit mode writes no policy", func(t *testing.T) {
		ns := "auditing"
		h.Namespace(t, ns, false)
		h.Service(t, ns, "orders", map[string]string{"app": "orders"})
		h.Intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{ServiceRef: svcRef("orders")}, Mode: v1alpha1.ModeAudit})
		h.ExpectCondition(t, ns, "orders", v1alpha1.ConditionPolicyApplied, metav1.ConditionTrue, v1alpha1.ReasonAuditMode)
		h.ExpectPolicies(t, nil, ns)
		h.UpdateIntent(t, ns, "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Mode = v1alpha1.ModeEnforce })
		h.ExpectPolicies(t, []string{ns + "/palisade-orders"}, ns)
		h.UpdateIntent(t, ns, "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Mode = v1alpha1.ModeAudit })
		h.ExpectPolicies(t, nil, ns)
	})

	t.Run("a no-op reconcile writes nothing", func(t *testing.T) {
		ns := "noop"
		h.Namespace(t, ns, true)
		h.Service(t, ns, "orders", map[string]string{"app": "orders"})
		h.Service(t, ns, "checkout", map[string]string{"app": "checkout"})
		h.Intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{
			Target:  v1alpha1.Target{ServiceRef: svcRef("orders")},
			Callers: []v1alpha1.Caller{{ServiceRef: &v1alpha1.ServiceReference{Name: "checkout"}, Ports: port(8080)}},
		})
		h.ExpectPolicies(t, []string{ns + "/palisade-default-deny", ns + "/palisade-baseline", ns + "/palisade-orders", ns + "/palisade-egress.noop.orders.checkout"}, ns)
		h.ExpectCondition(t, ns, "orders", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
		// The reconciles that the controllers' own writes caused are done.
		controllertest.WaitIdle(t, "serviceintent", "zerotrust-namespace")

		before := resourceVersions(t, h, ns)
		h.Writes.Reset()
		reconciles := controllertest.ReconcileCount(t, "serviceintent")
		nsReconciles := controllertest.ReconcileCount(t, "zerotrust-namespace")
		// A pod that the target does not select wakes no intent.
		h.Pod(t, ns, "unrelated", map[string]string{"app": "unrelated"})
		controllertest.Eventually(t, "the controllers see the pod", func() error {
			return h.Cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: "unrelated"}, &corev1.Pod{})
		})
		controllertest.WaitIdle(t, "serviceintent")
		if n := controllertest.ReconcileCount(t, "serviceintent"); n != reconciles {
			t.Errorf("a pod no target selects caused %v reconciles", n-reconciles)
		}
		// A namespace label change re-triggers the intent.
		controllertest.Eventually(t, "label namespace", func() error {
			var n corev1.Namespace
			if err := h.Client.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
				return err
			}
			n.Labels["touched"] = "yes"
			return h.Client.Update(ctx, &n)
		})
		controllertest.Eventually(t, "forced reconcile", func() error {
			if controllertest.ReconcileCount(t, "serviceintent") <= reconciles {
				return fmt.Errorf("no reconcile yet")
			}
			if controllertest.ReconcileCount(t, "zerotrust-namespace") <= nsReconciles {
				return fmt.Errorf("no namespace reconcile yet")
			}
			return nil
		})
		controllertest.WaitIdle(t, "serviceintent", "zerotrust-namespace")
		if w := h.Writes.List(); len(w) != 0 {
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

func selectedPods(h *controllertest.Harness, t *testing.T, ns, name string, want int32) error {
	if got := h.GetIntent(t, ns, name).Status.SelectedPods; got != want {
		return fmt.Errorf("selectedPods %d, want %d", got, want)
	}
	return nil
}

func resourceVersions(t *testing.T, h *controllertest.Harness, ns string) map[string]string {
	out := map[string]string{}
	for k, p := range h.Policies(t, ns) {
		out[k] = p.ResourceVersion
	}
	var list v1alpha1.ServiceIntentList
	if err := h.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
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

func expectEvent(t *testing.T, h *controllertest.Harness, ns, intent, reason string) {
	t.Helper()
	controllertest.Eventually(t, "event "+reason, func() error {
		var list eventsv1.EventList
		if err := h.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
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
