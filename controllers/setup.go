package controllers

import (
	"cmp"
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/intent"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// LeaderElectionID names the Lease that replicas of the controller compete
// for: only its holder runs the reconcilers and writes.
const LeaderElectionID = "palisade-controller.palisade.dev"

// Options configure the controllers.
type Options struct {
	// DNS is where cluster DNS runs, for zero-trust namespaces' baseline.
	DNS compiler.DNSConfig
	// Compile replaces the compile step; nil means the compiler. Only tests
	// set it, to inject compilation faults.
	Compile CompileFunc
	// UnusedCallerWindow: a declared caller not seen for this long is listed
	// as unused. Zero means observe.DefaultUnusedCallerWindow (24h).
	UnusedCallerWindow time.Duration
	// Workers is how many intents are reconciled at once (never the same
	// intent twice); zero means DefaultWorkers. A reconcile spends most of its
	// time waiting on the API server (apply, status patch), so a few workers
	// keep a cold start or a burst of pod events from queueing behind one
	// intent at a time.
	Workers int
	// AgentNamespace is the agent DaemonSet's namespace, whose pods' readiness
	// lifts the startup taint; empty means DefaultAgentNamespace.
	AgentNamespace string
	// CountUpdatesPerSecond paces status writes that change nothing but an
	// intent's selected-pod count (see countPacer); zero means
	// DefaultCountUpdatesPerSecond, a negative value writes them at once.
	CountUpdatesPerSecond float64
}

// DefaultWorkers is the default of Options.Workers.
const DefaultWorkers = 4

// CacheOptions are the manager's cache options the controllers expect: pods
// are cached with only what the intents need (labels, node, phase, host
// network, address), not their whole spec and status, which dominate the
// controller's memory in a large cluster.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:  {Transform: slimPod},
		&corev1.Node{}: {Transform: slimNode},
	}}
}

// slimPod keeps the fields of a pod the controllers read.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, OwnerReferences: p.OwnerReferences, DeletionTimestamp: p.DeletionTimestamp,
			CreationTimestamp: p.CreationTimestamp,
		},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}
	// Readiness: the node taint controller waits for the agent pod's.
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			slim.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return slim, nil
}

// SetupWithManager registers the index, the intent controller, the
// zero-trust namespace controller and the node startup-taint controller
// with the manager.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.ServiceIntent{}, referenceIndex, intentReferences); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.NodeFlowReport{}, reportIndex, reportIntents); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, podLabelIndex, podLabelTerms); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &networkingv1.NetworkPolicy{}, policyIntentIndex, policyIntent); err != nil {
		return err
	}
	intents := &ServiceIntentReconciler{
		Client:             mgr.GetClient(),
		APIReader:          mgr.GetAPIReader(),
		Recorder:           mgr.GetEventRecorder("palisade-controller"),
		Compile:            opts.Compile,
		UnusedCallerWindow: opts.UnusedCallerWindow,
		counts:             newCountPacer(cmp.Or(opts.CountUpdatesPerSecond, DefaultCountUpdatesPerSecond)),
	}
	if err := intents.setup(mgr, cmp.Or(opts.Workers, DefaultWorkers)); err != nil {
		return err
	}
	ns := &NamespaceReconciler{Client: mgr.GetClient(), DNS: opts.DNS}
	if err := ns.setup(mgr); err != nil {
		return err
	}
	return (&NodeTaintReconciler{Client: mgr.GetClient(), AgentNamespace: cmp.Or(opts.AgentNamespace, DefaultAgentNamespace)}).setup(ctx, mgr)
}

// intentChanged passes spec changes and the start of a deletion, not the
// controller's own status and finalizer writes.
var intentChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
			e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}

// managedPolicy passes NetworkPolicies Palisade generated.
var managedPolicy = predicate.NewPredicateFuncs(func(o client.Object) bool {
	return intent.IsManaged(o.GetLabels())
})

// podChanged passes what changes an intent's selected pods or the nodes
// that must enforce it: creation, deletion, labels, scheduling, phase.
var podChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		if labelsOrLifecycle.Update(e) {
			return true
		}
		before, okOld := e.ObjectOld.(*corev1.Pod)
		after, okNew := e.ObjectNew.(*corev1.Pod)
		return !okOld || !okNew || before.Spec.NodeName != after.Spec.NodeName || before.Status.Phase != after.Status.Phase ||
			before.Spec.HostNetwork != after.Spec.HostNetwork
	},
}

// labelsOrLifecycle passes creations, deletions and label changes: all that
// matters of Pods and Namespaces here.
var labelsOrLifecycle = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return !apiequality.Semantic.DeepEqual(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) ||
			e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}

func (r *ServiceIntentReconciler) setup(mgr ctrl.Manager, workers int) error {
	byRef := func(kind string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return intentsByKeys(ctx, r.Client, objectKey(kind, o.GetNamespace(), o.GetName()))
		})
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("serviceintent").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		For(&v1alpha1.ServiceIntent{}, builder.WithPredicates(intentChanged)).
		Watches(&networkingv1.NetworkPolicy{}, handler.EnqueueRequestsFromMapFunc(intentOfPolicy), builder.WithPredicates(managedPolicy)).
		Watches(&corev1.Service{}, byRef(compiler.KindService)).
		Watches(&appsv1.Deployment{}, byRef(string(v1alpha1.WorkloadDeployment)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&appsv1.StatefulSet{}, byRef(string(v1alpha1.WorkloadStatefulSet)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&appsv1.DaemonSet{}, byRef(string(v1alpha1.WorkloadDaemonSet)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&appsv1.ReplicaSet{}, byRef(string(v1alpha1.WorkloadReplicaSet)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&batchv1.Job{}, byRef(string(v1alpha1.WorkloadJob)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&batchv1.CronJob{}, byRef(string(v1alpha1.WorkloadCronJob)), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return intentsByKeys(ctx, r.Client, namespaceKey(o.GetName()), namespaceSelectorKey)
		}), builder.WithPredicates(labelsOrLifecycle)).
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
