package serviceintent

import (
	"cmp"
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers/internal/predicates"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// DefaultWorkers is the default of Reconciler.Workers.
const DefaultWorkers = 4

// intentChanged passes spec changes and the start of a deletion, not the
// controller's own status and finalizer writes.
var intentChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
			e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}

// podChanged passes what changes an intent's selected pods or the nodes
// that must enforce it: creation, deletion, labels, scheduling, phase.
var podChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		if predicates.LabelsOrLifecycle.Update(e) {
			return true
		}
		before, okOld := e.ObjectOld.(*corev1.Pod)
		after, okNew := e.ObjectNew.(*corev1.Pod)
		return !okOld || !okNew || before.Spec.NodeName != after.Spec.NodeName || before.Status.Phase != after.Status.Phase ||
			before.Spec.HostNetwork != after.Spec.HostNetwork
	},
}

// SetupWithManager registers the reconciler's indexes and the reconciler
// with the manager.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	indexes := []struct {
		obj     client.Object
		field   string
		extract client.IndexerFunc
	}{
		{&v1alpha1.ServiceIntent{}, referenceIndex, intentReferences},
		{&v1alpha1.NodeFlowReport{}, reportIndex, reportIntents},
		{&corev1.Pod{}, podLabelIndex, podLabelTerms},
		{&networkingv1.NetworkPolicy{}, policyIntentIndex, policyIntent},
	}
	for _, x := range indexes {
		if err := mgr.GetFieldIndexer().IndexField(ctx, x.obj, x.field, x.extract); err != nil {
			return fmt.Errorf("index %s: %w", x.field, err)
		}
	}
	r.counts = newCountPacer(cmp.Or(r.CountUpdatesPerSecond, DefaultCountUpdatesPerSecond))
	workers := cmp.Or(r.Workers, DefaultWorkers)
	byRef := func(kind string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return intentsByKeys(ctx, r.Client, objectKey(kind, o.GetNamespace(), o.GetName()))
		})
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("serviceintent").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		For(&v1alpha1.ServiceIntent{}, builder.WithPredicates(intentChanged)).
		Watches(&networkingv1.NetworkPolicy{}, handler.EnqueueRequestsFromMapFunc(intentOfPolicy), builder.WithPredicates(predicates.ManagedPolicy)).
		Watches(&corev1.Service{}, byRef(compiler.KindService)).
		Watches(&appsv1.Deployment{}, byRef(string(v1alpha1.WorkloadDeployment)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&appsv1.StatefulSet{}, byRef(string(v1alpha1.WorkloadStatefulSet)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&appsv1.DaemonSet{}, byRef(string(v1alpha1.WorkloadDaemonSet)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&appsv1.ReplicaSet{}, byRef(string(v1alpha1.WorkloadReplicaSet)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&batchv1.Job{}, byRef(string(v1alpha1.WorkloadJob)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&batchv1.CronJob{}, byRef(string(v1alpha1.WorkloadCronJob)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return intentsByKeys(ctx, r.Client, namespaceKey(o.GetName()), namespaceSelectorKey)
		}), builder.WithPredicates(predicates.LabelsOrLifecycle)).
		Watches(&corev1.Pod{}, r.targets.podHandler(), builder.WithPredicates(podChanged)).
		Watches(&v1alpha1.NodeFlowReport{}, r.reportHandler())
	return b.Complete(r)
}

// intentOfPolicy maps a generated policy back to its intent by its labels.
func intentOfPolicy(_ context.Context, o client.Object) []reconcile.Request {
	key, ok := owningIntent(o)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: key}}
}
