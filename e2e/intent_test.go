//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	palisadev1alpha1 "github.com/palisade-dev/palisade/api/v1alpha1"
)

// TestServiceIntents checks what the controller and the agents make of
// ServiceIntents, end to end, with the probe matrix. It runs on the default
// (nftables) backend; the policies it produces are plain NetworkPolicies,
// which TestNetworkPolicy checks on every backend.
func TestServiceIntents(t *testing.T) {
	e := clusterFor(t, "nftables")
	for _, s := range intentScenarios {
		e.scenario(t, s.name, func(t *testing.T) { s.run(t, e) })
	}
}

func service(ns, name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{testObjectLabel: "true"}},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80)}},
		},
	}
}

// deployment is a Deployment whose pods are the layout's pod=<podName>; no
// kube-controller-manager runs, so it spawns nothing and only names them.
func deployment(ns, name, podName string) *appsv1.Deployment {
	l := map[string]string{"pod": podName}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "palisade.dev/podserver:local"}}},
			},
		},
	}
}

func intent(ns, name string, target palisadev1alpha1.Target, callers ...palisadev1alpha1.Caller) *palisadev1alpha1.ServiceIntent {
	return &palisadev1alpha1.ServiceIntent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       palisadev1alpha1.ServiceIntentSpec{Target: target, Callers: callers},
	}
}

func targetPods(kv ...string) palisadev1alpha1.Target {
	return palisadev1alpha1.Target{PodSelector: intentSel(kv...)}
}

func intentSel(kv ...string) *palisadev1alpha1.LabelSelector {
	m := map[string]palisadev1alpha1.LabelValue{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = palisadev1alpha1.LabelValue(kv[i+1])
	}
	return &palisadev1alpha1.LabelSelector{MatchLabels: m}
}

func intentPort(p intstr.IntOrString, proto string) []palisadev1alpha1.IntentPort {
	return []palisadev1alpha1.IntentPort{{Port: p, Protocol: palisadev1alpha1.Protocol(proto)}}
}

// waitCondition waits for an intent's condition to reach status.
func (e *env) waitCondition(t *testing.T, ns, name, cond string, status metav1.ConditionStatus) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var si palisadev1alpha1.ServiceIntent
		err := e.c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &si)
		if err == nil {
			if c := meta.FindStatusCondition(si.Status.Conditions, cond); c != nil && c.Status == status {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("intent %s/%s: condition %s never became %s (conditions: %+v, err %v)", ns, name, cond, status, si.Status.Conditions, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var tcp80 = pport{Port: 80, Protocol: tcp}

var intentScenarios = []scenarioCase{
	{"service-caller", func(t *testing.T, e *env) {
		e.apply(t, service("x", "svc-a", labels("pod", "a")), service("y", "svc-b", labels("pod", "b")))
		e.apply(t, intent("x", "a", palisadev1alpha1.Target{ServiceRef: &palisadev1alpha1.LocalServiceReference{Name: "svc-a"}},
			palisadev1alpha1.Caller{ServiceRef: &palisadev1alpha1.ServiceReference{Name: "svc-b", Namespace: "y"}, Ports: intentPort(intstr.FromInt32(80), "TCP")}))
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool { return is(from, "y/b") && p == tcp80 }))
		e.waitCondition(t, "x", "a", palisadev1alpha1.ConditionReady, metav1.ConditionTrue)
	}},
	{"workload-caller", func(t *testing.T, e *env) {
		e.apply(t, deployment("z", "caller", "c"))
		e.apply(t, intent("x", "a", targetPods("pod", "a"),
			palisadev1alpha1.Caller{WorkloadRef: &palisadev1alpha1.WorkloadReference{Kind: "Deployment", Name: "caller", Namespace: "z"}}))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "z/c") }))
	}},
	{"workload-target-selector-caller-named-port", func(t *testing.T, e *env) {
		e.apply(t, deployment("y", "target-b", "b"))
		e.apply(t, intent("y", "b", palisadev1alpha1.Target{WorkloadRef: &palisadev1alpha1.LocalWorkloadReference{Kind: "Deployment", Name: "target-b"}},
			palisadev1alpha1.Caller{
				PodSelector:       intentSel("pod", "a"),
				NamespaceSelector: &palisadev1alpha1.LabelSelector{MatchExpressions: []palisadev1alpha1.LabelSelectorRequirement{{Key: "ns", Operator: "In", Values: []palisadev1alpha1.LabelValue{"x", "z"}}}},
				Ports:             intentPort(intstr.FromString("serve-81-udp"), "UDP"),
			}))
		e.expect(t, false, func(from, to *pod, p pport) bool {
			return !is(to, "y/b") || (nsOf(from, "x", "z") && from.Name == "a" && p == pport{Port: 81, Protocol: udp})
		})
	}},
	{"cidr-caller", func(t *testing.T, e *env) {
		node2 := e.c.State.Nodes[1]
		ya := e.pod("y/a")
		if ya.Node != node2.Name {
			t.Fatalf("layout changed: y/a is on %s, want %s", ya.Node, node2.Name)
		}
		e.apply(t, intent("x", "a", targetPods("pod", "a"), palisadev1alpha1.Caller{
			Name:    "node-2-pods",
			IPBlock: &palisadev1alpha1.IPBlock{CIDR: palisadev1alpha1.CIDR(node2.PodCIDR), Except: []palisadev1alpha1.CIDR{palisadev1alpha1.CIDR(ya.IP.String() + "/32")}},
		}))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return from.Node == node2.Name && !is(from, "y/a") }))
	}},
	{"caller-on-other-node-works-like-local", func(t *testing.T, e *env) {
		xa, xb, xc := e.pod("x/a"), e.pod("x/b"), e.pod("x/c")
		if xa.Node != xc.Node || xa.Node == xb.Node {
			t.Fatalf("layout changed: want x/a and x/c on one node, x/b on the other; got %s, %s, %s", xa.Node, xc.Node, xb.Node)
		}
		e.apply(t, intent("x", "a", targetPods("pod", "a"),
			palisadev1alpha1.Caller{Name: "remote", PodSelector: intentSel("pod", "b"), Ports: intentPort(intstr.FromInt32(81), "TCP")},
			palisadev1alpha1.Caller{Name: "local", PodSelector: intentSel("pod", "c"), Ports: intentPort(intstr.FromInt32(81), "TCP")}))
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool {
			return (is(from, "x/b") || is(from, "x/c")) && p == pport{Port: 81, Protocol: tcp}
		}))
	}},
	{"zero-trust-namespace", func(t *testing.T, e *env) {
		e.setLabels(t, "ns", "x", map[string]string{"ns": "x", palisadev1alpha1.LabelZeroTrust: palisadev1alpha1.ZeroTrustEnforce})
		// Nothing declared yet: x's pods talk to nobody but DNS, and nobody
		// reaches them.
		e.expect(t, true, func(from, to *pod, _ pport) bool {
			if to.Namespace == "x" {
				return false
			}
			return from.Namespace != "x" || to.DNS
		})
		// Declare x/b -> y/a on TCP 80: exactly that call opens (both the
		// egress from the zero-trust namespace and the ingress of y/a).
		e.apply(t, intent("y", "a", targetPods("pod", "a"), palisadev1alpha1.Caller{
			PodSelector: intentSel("pod", "b"), NamespaceSelector: intentSel("ns", "x"), Ports: intentPort(intstr.FromInt32(80), "TCP"),
		}))
		e.expect(t, true, func(from, to *pod, p pport) bool {
			if to.Namespace == "x" {
				return false
			}
			if is(to, "y/a") {
				return is(from, "x/b") && p == tcp80
			}
			return from.Namespace != "x" || to.DNS
		})
	}},
	{"intent-updated-and-deleted", func(t *testing.T, e *env) {
		si := intent("x", "a", targetPods("pod", "a"), palisadev1alpha1.Caller{PodSelector: intentSel("pod", "b"), NamespaceSelector: intentSel("ns", "y")})
		e.apply(t, si)
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "y/b") }))
		// Swap the caller and narrow to one port: y/b loses access, z/c gains TCP 80.
		si = intent("x", "a", targetPods("pod", "a"), palisadev1alpha1.Caller{
			PodSelector: intentSel("pod", "c"), NamespaceSelector: intentSel("ns", "z"), Ports: intentPort(intstr.FromInt32(80), "TCP"),
		})
		e.apply(t, si)
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool { return is(from, "z/c") && p == tcp80 }))
		// Add a second caller.
		si.Spec.Callers = append(si.Spec.Callers, palisadev1alpha1.Caller{PodSelector: intentSel("pod", "b")})
		e.apply(t, si)
		e.expect(t, false, onlyToXA(func(from *pod, p pport) bool { return is(from, "z/c") && p == tcp80 || is(from, "x/b") }))
		e.delete(t, si)
		e.expect(t, false, allowAll)
	}},
	{"missing-caller-grants-nothing", func(t *testing.T, e *env) {
		e.apply(t, intent("x", "a", targetPods("pod", "a"),
			palisadev1alpha1.Caller{ServiceRef: &palisadev1alpha1.ServiceReference{Name: "does-not-exist"}},
			palisadev1alpha1.Caller{PodSelector: intentSel("pod", "c")}))
		e.expect(t, false, onlyToXA(func(from *pod, _ pport) bool { return is(from, "x/c") }))
		e.waitCondition(t, "x", "a", palisadev1alpha1.ConditionResolved, metav1.ConditionFalse)
	}},
	{"selector-matching-nothing-changes-nothing", func(t *testing.T, e *env) {
		e.apply(t, intent("x", "nobody", targetPods("pod", "nobody"), palisadev1alpha1.Caller{PodSelector: intentSel("pod", "b")}))
		e.waitCondition(t, "x", "nobody", palisadev1alpha1.ConditionPolicyApplied, metav1.ConditionTrue)
		e.expect(t, false, allowAll)
	}},
}
