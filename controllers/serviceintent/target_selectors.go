package serviceintent

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
// pod's namespace instead would cost one reconcile per intent of the
// namespace for each pod event.
//
// An intent not reconciled yet has no entry and is woken by no pod event;
// its first reconcile lists its pods. Reconcile records the selector before
// it lists the pods, so a pod event either finds the new selector or
// happened before the list, which then sees the pod.
//
// Within a namespace the selectors are indexed by a label term they require
// (see requiredTerm), so a pod event matches only the selectors that share
// a term with the pod's labels, plus those without a required term.
type targetSelectors struct {
	mu          sync.RWMutex
	byNamespace map[string]*namespaceSelectors
}

// namespaceSelectors are the target selectors of one namespace's intents.
type namespaceSelectors struct {
	selector map[string]labels.Selector     // intent name -> selector
	term     map[string]string              // intent name -> its indexed term ("" for scanned)
	byTerm   map[string]map[string]struct{} // term -> intent names
	scanned  map[string]struct{}            // intents whose selector requires no term
}

func (n *namespaceSelectors) add(name string, sel labels.Selector) {
	n.remove(name)
	n.selector[name] = sel
	term, ok := requiredTerm(sel)
	if !ok {
		n.scanned[name] = struct{}{}
		return
	}
	n.term[name] = term
	if n.byTerm[term] == nil {
		n.byTerm[term] = map[string]struct{}{}
	}
	n.byTerm[term][name] = struct{}{}
}

func (n *namespaceSelectors) remove(name string) {
	if _, ok := n.selector[name]; !ok {
		return
	}
	delete(n.selector, name)
	delete(n.scanned, name)
	if term, ok := n.term[name]; ok {
		delete(n.term, name)
		delete(n.byTerm[term], name)
		if len(n.byTerm[term]) == 0 {
			delete(n.byTerm, term)
		}
	}
}

// candidates adds to out the intents whose selector may match any of the
// label sets: those indexed under one of their terms, and the scanned ones.
func (n *namespaceSelectors) candidates(out map[string]struct{}, sets ...map[string]string) {
	for name := range n.scanned {
		out[name] = struct{}{}
	}
	for _, set := range sets {
		for k, v := range set {
			for name := range n.byTerm[labelTerm(k, v)] {
				out[name] = struct{}{}
			}
		}
	}
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
		t.byNamespace = map[string]*namespaceSelectors{}
	}
	ns := t.byNamespace[key.Namespace]
	if ns == nil {
		ns = &namespaceSelectors{
			selector: map[string]labels.Selector{}, term: map[string]string{},
			byTerm: map[string]map[string]struct{}{}, scanned: map[string]struct{}{},
		}
		t.byNamespace[key.Namespace] = ns
	}
	ns.add(key.Name, sel)
}

// forget drops an intent (deleted, or its target selects nothing).
func (t *targetSelectors) forget(key client.ObjectKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := t.byNamespace[key.Namespace]
	if ns == nil {
		return
	}
	ns.remove(key.Name)
	if len(ns.selector) == 0 {
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
	var beforeLabels, afterLabels map[string]string
	if before != nil {
		beforeLabels = before.Labels
	}
	if after != nil {
		afterLabels = after.Labels
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	ns := t.byNamespace[pod.Namespace]
	if ns == nil {
		return nil
	}
	names := map[string]struct{}{}
	ns.candidates(names, beforeLabels, afterLabels)
	var out []reconcile.Request
	for name := range names {
		sel := ns.selector[name]
		was := before != nil && sel.Matches(labels.Set(beforeLabels))
		is := after != nil && sel.Matches(labels.Set(afterLabels))
		if (lifecycle && (was || is)) || (!lifecycle && was != is) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: pod.Namespace, Name: name}})
		}
	}
	return out
}

// podHandler enqueues the intents a pod event concerns (see intentsFor), at
// low priority: a pod event changes an intent's selected-pod count and
// enforcing nodes, while a change to an intent's spec changes what the
// network allows. Under a burst of pod events the backlog of pod-driven
// reconciles must not delay a user's intent change, which the priority
// queue then takes first.
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
