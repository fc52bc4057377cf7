package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers/compiler"
)

// referenceIndex indexes ServiceIntents by the objects they depend on, so an
// event on a Service, workload or Namespace finds its intents without listing
// them all.
const referenceIndex = "palisade.dev/references"

// namespaceSelectorKey is the index key of intents with a namespaceSelector
// caller: any Namespace label change may change what they select.
const namespaceSelectorKey = "NamespaceSelector"

func objectKey(kind, namespace, name string) string {
	return fmt.Sprintf("%s/%s/%s", kind, namespace, name)
}

func namespaceKey(namespace string) string { return "Namespace/" + namespace }

// intentReferences returns the index keys of everything the intent depends on.
func intentReferences(obj client.Object) []string {
	si, ok := obj.(*v1alpha1.ServiceIntent)
	if !ok {
		return nil
	}
	ns := si.Namespace
	keys := []string{namespaceKey(ns)}
	t := si.Spec.Target
	switch {
	case t.ServiceRef != nil:
		keys = append(keys, objectKey(compiler.KindService, ns, t.ServiceRef.Name))
	case t.WorkloadRef != nil:
		keys = append(keys, objectKey(string(t.WorkloadRef.Kind), ns, t.WorkloadRef.Name))
	}
	for i := range si.Spec.Callers {
		c := &si.Spec.Callers[i]
		switch {
		case c.ServiceRef != nil:
			cns := orDefault(c.ServiceRef.Namespace, ns)
			keys = append(keys, objectKey(compiler.KindService, cns, c.ServiceRef.Name), namespaceKey(cns))
		case c.WorkloadRef != nil:
			cns := orDefault(c.WorkloadRef.Namespace, ns)
			keys = append(keys, objectKey(string(c.WorkloadRef.Kind), cns, c.WorkloadRef.Name), namespaceKey(cns))
		case c.NamespaceSelector != nil:
			keys = append(keys, namespaceSelectorKey)
		}
	}
	return keys
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// intentsByKeys enqueues the intents indexed under any of the keys.
func intentsByKeys(ctx context.Context, c client.Reader, keys ...string) []reconcile.Request {
	seen := map[client.ObjectKey]bool{}
	var out []reconcile.Request
	for _, key := range keys {
		var list v1alpha1.ServiceIntentList
		if err := c.List(ctx, &list, client.MatchingFields{referenceIndex: key}); err != nil {
			continue
		}
		for i := range list.Items {
			k := client.ObjectKeyFromObject(&list.Items[i])
			if !seen[k] {
				seen[k] = true
				out = append(out, reconcile.Request{NamespacedName: k})
			}
		}
	}
	return out
}

// reportIndex indexes NodeFlowReports by the intents ("namespace/name")
// they name: among the programmed intents, or as deciders of an ingress
// flow. An intent reads only the reports that concern it.
const reportIndex = "palisade.dev/report-intents"

// reportIntents returns the index keys of a NodeFlowReport.
func reportIntents(obj client.Object) []string {
	r, ok := obj.(*v1alpha1.NodeFlowReport)
	if !ok {
		return nil
	}
	keys, _ := reportParts(r)
	return keys
}

// reportPart is what a report says that concerns one index key: the
// intent's programmed entry, and the flows that name the key.
type reportPart struct {
	Programmed []v1alpha1.ProgrammedIntent
	Flows      []v1alpha1.FlowRecord
}

// reportParts splits a report by index key; keys lists them in the order
// they first appear.
func reportParts(r *v1alpha1.NodeFlowReport) (keys []string, parts map[string]*reportPart) {
	parts = map[string]*reportPart{}
	part := func(key string) *reportPart {
		p := parts[key]
		if p == nil {
			p = &reportPart{}
			parts[key] = p
			keys = append(keys, key)
		}
		return p
	}
	for _, p := range r.Spec.Intents {
		pp := part(p.Namespace + "/" + p.Name)
		pp.Programmed = append(pp.Programmed, p)
	}
	for i := range r.Spec.Flows {
		f := &r.Spec.Flows[i]
		if f.Direction != v1alpha1.FlowIngress {
			if f.Verdict != v1alpha1.VerdictAllowed && f.Destination.Namespace != "" {
				pp := part(deniedIntoKey(f.Destination.Namespace))
				pp.Flows = append(pp.Flows, *f)
			}
			continue
		}
		for _, key := range f.Intents {
			pp := part(key)
			pp.Flows = append(pp.Flows, *f)
		}
	}
	return keys, parts
}

// changedReportKeys returns the index keys whose part of the report differs
// between two versions of it. A report is rewritten at every interval (and
// at once when a sync changes what is programmed), and names every intent
// programmed on its node: waking them all at each write cost thousands of
// reconciles per report on a node with thousands of intents. Every key of
// both versions counts when what makes the report fresh changed: another
// node or interval, or an old version that had gone stale before the new
// one was written (the node's agent is back).
func changedReportKeys(old, cur *v1alpha1.NodeFlowReport) []string {
	oldKeys, oldParts := reportParts(old)
	curKeys, curParts := reportParts(cur)
	interval := time.Duration(max(old.Spec.IntervalSeconds, 1)) * time.Second
	staleAt := old.Spec.ReportedAt.Add(v1alpha1.ReportStaleIntervals * interval)
	all := old.Spec.NodeName != cur.Spec.NodeName || old.Spec.IntervalSeconds != cur.Spec.IntervalSeconds ||
		cur.Spec.ReportedAt.After(staleAt)
	var out []string
	for _, k := range curKeys {
		if all || oldParts[k] == nil || !apiequality.Semantic.DeepEqual(oldParts[k], curParts[k]) {
			out = append(out, k)
		}
	}
	for _, k := range oldKeys {
		if curParts[k] == nil {
			out = append(out, k)
		}
	}
	return out
}

// deniedIntoKey is the index key of reports holding flows that the source's
// egress policy turned away before they reached a pod of the namespace. In
// a zero-trust namespace the caller's own baseline drops an undeclared call
// at its node, so the target's node never sees it; the target's intents
// still list it as an undeclared caller.
func deniedIntoKey(namespace string) string { return "denied-into:" + namespace }

// reportHandler enqueues the intents a report event concerns: all those it
// names when it is created or deleted, and on an update those whose part of
// it changed (changedReportKeys), an intent the node no longer names
// included.
func (r *ServiceIntentReconciler) reportHandler() handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	enqueue := func(ctx context.Context, q queue, keys []string) {
		for _, req := range r.intentsOfReportKeys(ctx, keys) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) { enqueue(ctx, q, reportIntents(e.Object)) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			old, ok1 := e.ObjectOld.(*v1alpha1.NodeFlowReport)
			cur, ok2 := e.ObjectNew.(*v1alpha1.NodeFlowReport)
			if !ok1 || !ok2 {
				return
			}
			enqueue(ctx, q, changedReportKeys(old, cur))
		},
		DeleteFunc:  func(ctx context.Context, e event.DeleteEvent, q queue) { enqueue(ctx, q, reportIntents(e.Object)) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { enqueue(ctx, q, reportIntents(e.Object)) },
	}
}

// intentsOfReportKeys maps report index keys to intents: a named intent to
// itself, a denied-into key to every intent of its namespace; malformed
// keys to nothing.
func (r *ServiceIntentReconciler) intentsOfReportKeys(ctx context.Context, keys []string) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(keys))
	for _, key := range keys {
		if ns, ok := strings.CutPrefix(key, deniedIntoKey("")); ok {
			out = append(out, r.intentsInNamespace(ctx, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns}})...)
			continue
		}
		ns, name, ok := strings.Cut(key, "/")
		if !ok || ns == "" || name == "" {
			continue
		}
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}})
	}
	return out
}

// podLabelIndex indexes Pods by each of their label terms (labelTerm), so
// that listing the pods a target selects reads only the pods that carry
// the selector's required term, not the whole namespace.
const podLabelIndex = "palisade.dev/pod-label-terms"

func podLabelTerms(obj client.Object) []string { return labelTerms(obj.GetLabels()) }

// policyIntentIndex indexes the NetworkPolicies Palisade generated by their
// intent ("namespace/name"), so that a reconcile finds its intent's policies
// without matching labels over every policy of the cluster.
const policyIntentIndex = "palisade.dev/policy-intent"

func policyIntent(obj client.Object) []string {
	l := obj.GetLabels()
	if l[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || l[v1alpha1.LabelIntent] == "" || l[v1alpha1.LabelIntentNamespace] == "" {
		return nil
	}
	return []string{l[v1alpha1.LabelIntentNamespace] + "/" + l[v1alpha1.LabelIntent]}
}
