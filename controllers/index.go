package controllers

import (
	"context"
	"fmt"

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
