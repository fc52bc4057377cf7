package controllers

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// targetSelectors remembers, per namespace, the pod selector each intent's
// target resolved to at its last reconcile, so that a pod event wakes only
// the intents whose selected pods it changes. Enqueueing every intent of the
// pod's namespace instead made the controller fall behind for minutes under
// 100 pod events/s with 5,000 intents in a namespace (reliability scenario
// 11): each event cost 5,000 reconciles.
//
// An intent not reconciled yet has no entry and is woken by no pod event;
// its first reconcile lists its pods. Reconcile records the selector before
// it lists the pods, so a pod event either finds the new selector or
// happened before the list, which then sees the pod.
type targetSelectors struct {
	mu          sync.RWMutex
	byNamespace map[string]map[string]labels.Selector
}

// set records the target selector of an intent; nil (a target that selects
// no pods, or does not resolve) forgets it.
func (t *targetSelectors) set(key client.ObjectKey, target *metav1.LabelSelector) {
	var sel labels.Selector
	if target != nil {
		var err error
		if sel, err = metav1.LabelSelectorAsSelector(target); err != nil {
			sel = nil // an unparsable selector selects nothing (see targetPods)
		}
	}
	if sel == nil {
		t.forget(key)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byNamespace == nil {
		t.byNamespace = map[string]map[string]labels.Selector{}
	}
	ns := t.byNamespace[key.Namespace]
	if ns == nil {
		ns = map[string]labels.Selector{}
		t.byNamespace[key.Namespace] = ns
	}
	ns[key.Name] = sel
}

// forget drops an intent (deleted, or its target selects nothing).
func (t *targetSelectors) forget(key client.ObjectKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.byNamespace[key.Namespace]
	delete(ns, key.Name)
	if len(ns) == 0 {
		delete(t.byNamespace, key.Namespace)
	}
}

// intentsFor returns the intents a pod event concerns. before is nil for a
// creation, after for a deletion. A pod that appears, disappears, moves to
// another node, changes phase or host networking concerns every intent that
// selects it (selected-pod count, enforcing nodes); a label change alone
// concerns only the intents that select it on one side and not the other.
func (t *targetSelectors) intentsFor(before, after *corev1.Pod) []reconcile.Request {
	pod := after
	if pod == nil {
		pod = before
	}
	if pod == nil {
		return nil
	}
	lifecycle := before == nil || after == nil ||
		before.Spec.NodeName != after.Spec.NodeName || before.Status.Phase != after.Status.Phase ||
		before.Spec.HostNetwork != after.Spec.HostNetwork ||
		before.DeletionTimestamp.IsZero() != after.DeletionTimestamp.IsZero()
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []reconcile.Request
	for name, sel := range t.byNamespace[pod.Namespace] {
		was := before != nil && sel.Matches(labels.Set(before.Labels))
		is := after != nil && sel.Matches(labels.Set(after.Labels))
		if (lifecycle && (was || is)) || (!lifecycle && was != is) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: pod.Namespace, Name: name}})
		}
	}
	return out
}

// podHandler enqueues the intents a pod event concerns (see intentsFor), at
// low priority: a pod event changes an intent's selected-pod count and
// enforcing nodes, while a change to an intent's spec changes what the
// network allows. Under a burst of pod events (scenario 11: 100/s over 5,000
// intents) the backlog of pod-driven reconciles must not delay a user's
// intent change, which the priority queue then takes first.
func (t *targetSelectors) podHandler() handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	enqueue := func(q queue, before, after client.Object) {
		b, _ := before.(*corev1.Pod)
		a, _ := after.(*corev1.Pod)
		reqs := t.intentsFor(b, a)
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, reqs...)
			return
		}
		for _, req := range reqs {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc:  func(_ context.Context, e event.CreateEvent, q queue) { enqueue(q, nil, e.Object) },
		UpdateFunc:  func(_ context.Context, e event.UpdateEvent, q queue) { enqueue(q, e.ObjectOld, e.ObjectNew) },
		DeleteFunc:  func(_ context.Context, e event.DeleteEvent, q queue) { enqueue(q, e.Object, nil) },
		GenericFunc: func(_ context.Context, e event.GenericEvent, q queue) { enqueue(q, nil, e.Object) },
	}
}
