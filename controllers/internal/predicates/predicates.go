// Package predicates holds the event filters several reconcilers share.
package predicates

import (
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/palisade-dev/palisade/internal/intent"
)

// ManagedPolicy passes NetworkPolicies Palisade generated.
var ManagedPolicy = predicate.NewPredicateFuncs(func(o client.Object) bool {
	return intent.IsManaged(o.GetLabels())
})

// LabelsOrLifecycle passes creations, deletions and label changes: all that
// matters of Pods and Namespaces to the reconcilers.
var LabelsOrLifecycle = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return !apiequality.Semantic.DeepEqual(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) ||
			e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}
