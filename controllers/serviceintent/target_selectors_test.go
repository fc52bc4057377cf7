package serviceintent

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestTargetSelectorsIntentsFor(t *testing.T) {
	var ts targetSelectors
	sel := func(l map[string]string) *metav1.LabelSelector { return &metav1.LabelSelector{MatchLabels: l} }
	ts.set(client.ObjectKey{Namespace: "shop", Name: "orders"}, sel(map[string]string{"app": "orders"}))
	ts.set(client.ObjectKey{Namespace: "shop", Name: "payments"}, sel(map[string]string{"app": "payments"}))
	ts.set(client.ObjectKey{Namespace: "shop", Name: "all"}, &metav1.LabelSelector{})
	ts.set(client.ObjectKey{Namespace: "other", Name: "orders"}, sel(map[string]string{"app": "orders"}))
	// A target that resolves to nothing, then to a selector, then to nothing
	// again, is woken by no pod event.
	ts.set(client.ObjectKey{Namespace: "shop", Name: "gone"}, sel(map[string]string{"app": "orders"}))
	ts.set(client.ObjectKey{Namespace: "shop", Name: "gone"}, nil)
	// An unparsable selector selects nothing.
	ts.set(client.ObjectKey{Namespace: "shop", Name: "bad"}, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}})
	ts.set(client.ObjectKey{Namespace: "shop", Name: "deleted"}, sel(map[string]string{"app": "orders"}))
	ts.forget(client.ObjectKey{Namespace: "shop", Name: "deleted"})
	// A target whose selector changed is indexed under its new term only.
	ts.set(client.ObjectKey{Namespace: "shop", Name: "retargeted"}, sel(map[string]string{"app": "orders"}))
	ts.set(client.ObjectKey{Namespace: "shop", Name: "retargeted"}, sel(map[string]string{"app": "basket"}))
	// Selectors without a required term are matched by a scan.
	ts.set(client.ObjectKey{Namespace: "shop", Name: "not-cart"}, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"cart", "basket"}}}})

	pod := func(app, node string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p", Labels: map[string]string{"app": app, "gen": "0"}},
			Spec:       corev1.PodSpec{NodeName: node},
			Status:     corev1.PodStatus{Phase: phase},
		}
	}
	relabel := func(p *corev1.Pod, k, v string) *corev1.Pod {
		c := p.DeepCopy()
		c.Labels[k] = v
		return c
	}
	running := pod("orders", "node-1", corev1.PodRunning)
	deleting := running.DeepCopy()
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	moved := running.DeepCopy()
	moved.Spec.NodeName = "node-2"
	hostNet := running.DeepCopy()
	hostNet.Spec.HostNetwork = true

	tests := []struct {
		name          string
		before, after *corev1.Pod
		want          []string
	}{
		{"created", nil, running, []string{"all", "not-cart", "orders"}},
		{"deleted", running, nil, []string{"all", "not-cart", "orders"}},
		{"unrelated label changed: nobody", running, relabel(running, "gen", "1"), nil},
		{"moved between targets", running, relabel(running, "app", "payments"), []string{"orders", "payments"}},
		{"left every named target", running, relabel(running, "app", "cart"), []string{"not-cart", "orders"}},
		{"into a retargeted intent's new target", running, relabel(running, "app", "basket"), []string{"not-cart", "orders", "retargeted"}},
		{"scheduled", pod("orders", "", corev1.PodPending), pod("orders", "node-1", corev1.PodPending), []string{"all", "not-cart", "orders"}},
		{"started running", pod("orders", "node-1", corev1.PodPending), running, []string{"all", "not-cart", "orders"}},
		{"moved to another node", running, moved, []string{"all", "not-cart", "orders"}},
		{"host network", running, hostNet, []string{"all", "not-cart", "orders"}},
		{"terminating", running, deleting, []string{"all", "not-cart", "orders"}},
		{"relabelled while scheduled", pod("orders", "", corev1.PodPending), pod("payments", "node-1", corev1.PodPending), []string{"all", "not-cart", "orders", "payments"}},
		{"namespace without intents", nil, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "empty", Labels: map[string]string{"app": "orders"}}}, nil},
		{"no pod", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, req := range ts.intentsFor(tt.before, tt.after) {
				if req.Namespace != "shop" {
					t.Errorf("woke %s in another namespace", req)
				}
				got = append(got, req.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("woke %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPodEventsYieldToIntentChanges: pod-driven reconciles queue at low
// priority, also for intents waiting for a recheck, so an intent change
// added after a backlog of them is taken first.
func TestPodEventsYieldToIntentChanges(t *testing.T) {
	var ts targetSelectors
	for i := range 50 {
		ts.set(client.ObjectKey{Namespace: "load", Name: fmt.Sprintf("svc-%02d", i)}, &metav1.LabelSelector{MatchLabels: map[string]string{"svc": fmt.Sprint(i)}})
	}
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	// Each intent was reconciled once for its creation (taken at priority
	// 0) and waits for its time-based recheck, requeued the way
	// controller-runtime does it: at the result's priority, or else at the
	// priority the request was taken at.
	for i := range 50 {
		res := recheckLater(24 * time.Hour)
		q.AddWithOpts(priorityqueue.AddOpts{After: res.RequeueAfter, Priority: ptr.To(ptr.Deref(res.Priority, 0))},
			reconcile.Request{NamespacedName: client.ObjectKey{Namespace: "load", Name: fmt.Sprintf("svc-%02d", i)}})
	}
	h := ts.podHandler()
	for i := range 50 {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "load", Name: fmt.Sprintf("p%d", i), Labels: map[string]string{"svc": fmt.Sprint(i)}}}
		h.Create(context.Background(), event.CreateEvent{Object: p}, q)
	}
	if n := q.Len(); n != 50 {
		t.Fatalf("%d pod-driven requests queued, want 50", n)
	}
	change := reconcile.Request{NamespacedName: client.ObjectKey{Namespace: "shop", Name: "orders"}}
	q.Add(change) // what the intent's own watch does, at the default priority
	got, _, _ := q.GetWithPriority()
	if got != change {
		t.Errorf("first request %v, want the intent change %v ahead of the pod backlog", got, change)
	}
}
