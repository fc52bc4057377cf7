package nodetaint_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers/internal/controllertest"
)

// TestNodeStartupTaint runs the controllers against a real API server: a
// node registered with the startup taint keeps it while its agent pod is
// not Ready and loses it (and only it) once the pod is Ready; a node
// registered without the taint is never written.
func TestNodeStartupTaint(t *testing.T) {
	h := controllertest.Start(t)
	ctx := context.Background()
	h.Namespace(t, "palisade-system", false)

	startup := corev1.Taint{Key: v1alpha1.TaintAgentNotReady, Effect: corev1.TaintEffectNoSchedule}
	other := corev1.Taint{Key: "example.com/dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	tainted := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "tainted"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{startup, other}}}
	plain := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}
	for _, n := range []*corev1.Node{tainted, plain} {
		if err := h.Client.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	plainVersion := plain.ResourceVersion
	// The API server adds taints of its own (TaintNodesByCondition:
	// node.kubernetes.io/not-ready); they must be kept like ours.
	registered := tainted.Spec.Taints
	var kept []corev1.Taint
	for _, tn := range registered {
		if tn.Key != v1alpha1.TaintAgentNotReady {
			kept = append(kept, tn)
		}
	}
	if !slices.Contains(registered, startup) || !slices.Contains(kept, other) {
		t.Fatalf("node registered with taints %v", registered)
	}

	agent := func(node string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "agent-" + node, Namespace: "palisade-system", Labels: map[string]string{"app.kubernetes.io/name": "palisade-agent"}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "agent", Image: "palisade-agent"}}},
		}
	}
	setReady := func(p *corev1.Pod) {
		t.Helper()
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		if err := h.Client.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// A pod that is Ready but is not the agent must not untaint the node,
	// nor a look-alike with the agent's label outside the agent's namespace.
	bystander := agent("tainted")
	bystander.Name, bystander.Labels = "web", map[string]string{"app.kubernetes.io/name": "web"}
	lookalike := agent("tainted")
	lookalike.Namespace = "tenant"
	h.Namespace(t, "tenant", false)
	plainAgent, taintedAgent := agent("plain"), agent("tainted")
	for _, p := range []*corev1.Pod{bystander, lookalike, plainAgent, taintedAgent} {
		if err := h.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	setReady(bystander)
	setReady(lookalike)
	setReady(plainAgent)

	// The controller sees the agent pod not Ready: the taint stays. First
	// wait until its cache holds the Ready pods above: a sentinel node's
	// agent, made Ready after them, comes through the same pod watch, so
	// once the sentinel is untainted the cache has them too. Then make the
	// controller reconcile the tainted node (a label change) and wait for
	// that reconcile before asserting that it left the taint.
	sentinel := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "sentinel"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{startup}}}
	if err := h.Client.Create(ctx, sentinel); err != nil {
		t.Fatal(err)
	}
	sentinelAgent := agent("sentinel")
	if err := h.Client.Create(ctx, sentinelAgent); err != nil {
		t.Fatal(err)
	}
	setReady(sentinelAgent)
	controllertest.Eventually(t, "the sentinel node is untainted", func() error {
		n := &corev1.Node{}
		if err := h.Client.Get(ctx, client.ObjectKey{Name: "sentinel"}, n); err != nil {
			return err
		}
		if slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Key == v1alpha1.TaintAgentNotReady }) {
			return fmt.Errorf("taints %v", n.Spec.Taints)
		}
		return nil
	})
	before := controllertest.ReconcileCount(t, "node-agent-taint")
	controllertest.Eventually(t, "label the tainted node", func() error {
		n := &corev1.Node{}
		if err := h.Client.Get(ctx, client.ObjectKey{Name: "tainted"}, n); err != nil {
			return err
		}
		n.Labels = map[string]string{"touched": "yes"}
		return h.Client.Update(ctx, n)
	})
	controllertest.Eventually(t, "the node taint controller reconciles the tainted node", func() error {
		if controllertest.ReconcileCount(t, "node-agent-taint") <= before {
			return fmt.Errorf("no reconcile yet")
		}
		return nil
	})
	taintsOf := func(name string) []corev1.Taint {
		t.Helper()
		n := &corev1.Node{}
		if err := h.Client.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
			t.Fatal(err)
		}
		return n.Spec.Taints
	}
	if got := taintsOf("tainted"); !reflect.DeepEqual(got, registered) {
		t.Fatalf("taints %v while the agent is not Ready, want %v", got, registered)
	}

	// The agent becomes Ready (its first sync is done): the startup taint
	// goes, the other one stays.
	setReady(taintedAgent)
	controllertest.Eventually(t, "the startup taint is removed", func() error {
		if got := taintsOf("tainted"); !reflect.DeepEqual(got, kept) {
			return fmt.Errorf("taints %v, want %v", got, kept)
		}
		return nil
	})

	// The node without the taint was never written.
	n := &corev1.Node{}
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "plain"}, n); err != nil {
		t.Fatal(err)
	}
	if n.ResourceVersion != plainVersion {
		t.Errorf("node without the startup taint changed: resourceVersion %s, was %s", n.ResourceVersion, plainVersion)
	}
	for _, w := range h.Writes.List() {
		if strings.Contains(w, "*v1.Node ") && !strings.HasSuffix(w, "/tainted") && !strings.HasSuffix(w, "/sentinel") {
			t.Errorf("unexpected node write: %s", w)
		}
	}
}
