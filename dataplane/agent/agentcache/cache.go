// Package agentcache says what the node agent's informer cache holds: the
// kinds it watches and, of each object, only what policy evaluation and the
// intent resolver read.
package agentcache

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/cachetransform"
)

// Options returns cache options that keep only what policy evaluation
// reads of each cached object, to keep the agent's memory low on big
// clusters: of a Pod also its named ports, which NetworkPolicy ports by
// name resolve against. Services and workloads are cached for the intent
// resolver, which reads only their pod selectors.
func Options() cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:             {Transform: cachetransform.Pod(cachetransform.PodFields{NamedPorts: true})},
			&corev1.Namespace{}:       {Transform: cachetransform.NamespaceLabels},
			&v1alpha1.ServiceIntent{}: {Transform: stripIntent},
			&corev1.Service{}:         {Transform: stripSelectors},
			&appsv1.Deployment{}:      {Transform: stripSelectors},
			&appsv1.StatefulSet{}:     {Transform: stripSelectors},
			&appsv1.DaemonSet{}:       {Transform: stripSelectors},
			&appsv1.ReplicaSet{}:      {Transform: stripSelectors},
			&batchv1.Job{}:            {Transform: stripSelectors},
			&batchv1.CronJob{}:        {Transform: stripSelectors},
		},
		DefaultTransform: cachetransform.DropManagedFieldsAndAnnotations,
	}
}

// EnforcedObjects are the kinds the agent computes a node's policy state
// from.
func EnforcedObjects() []client.Object {
	return []client.Object{&corev1.Pod{}, &corev1.Namespace{}, &networkingv1.NetworkPolicy{}}
}

// ResolvedObjects are the kinds internal/intent/resolve reads, which the
// agent watches for the intents it compiles itself.
func ResolvedObjects() []client.Object {
	return []client.Object{&corev1.Service{}, &appsv1.Deployment{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{},
		&appsv1.ReplicaSet{}, &batchv1.Job{}, &batchv1.CronJob{}}
}

// stripSelectors reduces a Service or workload to its identity and what the
// intent resolver reads: the pod selector, and for Jobs and CronJobs the
// pod template's labels (their fallback selector).
func stripSelectors(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		return &corev1.Service{ObjectMeta: cachetransform.Identity(&o.ObjectMeta), Spec: corev1.ServiceSpec{Selector: o.Spec.Selector}}, nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{ObjectMeta: cachetransform.Identity(&o.ObjectMeta), Spec: appsv1.DeploymentSpec{Selector: o.Spec.Selector}}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: cachetransform.Identity(&o.ObjectMeta), Spec: appsv1.StatefulSetSpec{Selector: o.Spec.Selector}}, nil
	case *appsv1.DaemonSet:
		return &appsv1.DaemonSet{ObjectMeta: cachetransform.Identity(&o.ObjectMeta), Spec: appsv1.DaemonSetSpec{Selector: o.Spec.Selector}}, nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: cachetransform.Identity(&o.ObjectMeta), Spec: appsv1.ReplicaSetSpec{Selector: o.Spec.Selector}}, nil
	case *batchv1.Job:
		out := &batchv1.Job{ObjectMeta: cachetransform.Identity(&o.ObjectMeta), Spec: batchv1.JobSpec{Selector: o.Spec.Selector}}
		out.Spec.Template.Labels = o.Spec.Template.Labels
		return out, nil
	case *batchv1.CronJob:
		out := &batchv1.CronJob{ObjectMeta: cachetransform.Identity(&o.ObjectMeta)}
		out.Spec.JobTemplate.Spec.Selector = o.Spec.JobTemplate.Spec.Selector
		out.Spec.JobTemplate.Spec.Template.Labels = o.Spec.JobTemplate.Spec.Template.Labels
		return out, nil
	}
	return obj, nil
}

// stripIntent drops an intent's status (up to hundreds of observed callers)
// and managed fields; the agent compiles from the spec.
func stripIntent(obj any) (any, error) {
	si, ok := obj.(*v1alpha1.ServiceIntent)
	if !ok {
		return obj, nil
	}
	out := &v1alpha1.ServiceIntent{ObjectMeta: cachetransform.Identity(&si.ObjectMeta), Spec: si.Spec}
	out.Generation = si.Generation
	out.DeletionTimestamp = si.DeletionTimestamp
	return out, nil
}
