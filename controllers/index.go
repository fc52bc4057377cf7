package controllers

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	seen := map[string]bool{}
	var out []string
	add := func(key string) {
		if !seen[key] {
			seen[key] = true
			out = append(out, key)
		}
	}
	for _, p := range r.Spec.Intents {
		add(p.Namespace + "/" + p.Name)
	}
	for i := range r.Spec.Flows {
		f := &r.Spec.Flows[i]
		if f.Direction != v1alpha1.FlowIngress {
			if f.Verdict != v1alpha1.VerdictAllowed && f.Destination.Namespace != "" {
				add(deniedIntoKey(f.Destination.Namespace))
			}
			continue
		}
		for _, key := range f.Intents {
			add(key)
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

// intentsOfReport maps a report to the intents it names. On an update both
// the old and the new report are mapped, and on a deletion the last state
// is: an intent the node no longer names, or whose node stopped reporting,
// is reconciled too.
func (r *ServiceIntentReconciler) intentsOfReport(ctx context.Context, o client.Object) []reconcile.Request {
	keys := reportIntents(o)
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
