// Package agentcache says what the node agent's informer cache holds: the
// kinds it watches and, of each object, only what policy evaluation and the
// intent resolver read.
package agentcache

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// Options returns cache options that keep only what policy evaluation
// reads of each cached object, to keep the agent's memory low on big
// clusters (a full Pod is tens of KiB). Services and workloads are cached
// for the intent resolver, which reads only their pod selectors.
func Options() cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:             {Transform: StripPod},
			&corev1.Namespace{}:       {Transform: stripMeta},
			&v1alpha1.ServiceIntent{}: {Transform: stripIntent},
			&corev1.Service{}:         {Transform: StripSelectors},
			&appsv1.Deployment{}:      {Transform: StripSelectors},
			&appsv1.StatefulSet{}:     {Transform: StripSelectors},
			&appsv1.DaemonSet{}:       {Transform: StripSelectors},
			&appsv1.ReplicaSet{}:      {Transform: StripSelectors},
			&batchv1.Job{}:            {Transform: StripSelectors},
			&batchv1.CronJob{}:        {Transform: StripSelectors},
		},
		DefaultTransform: stripManagedFields,
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

// identity keeps what makes a cached object addressable.
func identity(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
}

// StripSelectors reduces a Service or workload to its identity and what the
// intent resolver reads: the pod selector, and for Jobs and CronJobs the
// pod template's labels (their fallback selector).
func StripSelectors(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		return &corev1.Service{ObjectMeta: identity(&o.ObjectMeta), Spec: corev1.ServiceSpec{Selector: o.Spec.Selector}}, nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{ObjectMeta: identity(&o.ObjectMeta), Spec: appsv1.DeploymentSpec{Selector: o.Spec.Selector}}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: identity(&o.ObjectMeta), Spec: appsv1.StatefulSetSpec{Selector: o.Spec.Selector}}, nil
	case *appsv1.DaemonSet:
		return &appsv1.DaemonSet{ObjectMeta: identity(&o.ObjectMeta), Spec: appsv1.DaemonSetSpec{Selector: o.Spec.Selector}}, nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: identity(&o.ObjectMeta), Spec: appsv1.ReplicaSetSpec{Selector: o.Spec.Selector}}, nil
	case *batchv1.Job:
		out := &batchv1.Job{ObjectMeta: identity(&o.ObjectMeta), Spec: batchv1.JobSpec{Selector: o.Spec.Selector}}
		out.Spec.Template.Labels = o.Spec.Template.Labels
		return out, nil
	case *batchv1.CronJob:
		out := &batchv1.CronJob{ObjectMeta: identity(&o.ObjectMeta)}
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
	out := &v1alpha1.ServiceIntent{ObjectMeta: identity(&si.ObjectMeta), Spec: si.Spec}
	out.Generation = si.Generation
	out.DeletionTimestamp = si.DeletionTimestamp
	return out, nil
}

// StripPod reduces a Pod to name, namespace, labels, owner references (for
// the workload of flows), node, hostNetwork, container ports, phase and IPs.
func StripPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, Labels: p.Labels,
			UID: p.UID, ResourceVersion: p.ResourceVersion, OwnerReferences: ownerNames(p.OwnerReferences),
		},
		Spec: corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{
			Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs,
		},
	}
	// Named ports of init containers count too: restartable init containers
	// (sidecars) serve traffic, and policy.PodFromAPI reads both lists.
	out.Spec.InitContainers = namedPortsOnly(p.Spec.InitContainers)
	out.Spec.Containers = namedPortsOnly(p.Spec.Containers)
	return out, nil
}

// namedPortsOnly keeps, of each container, its name and named ports.
func namedPortsOnly(containers []corev1.Container) []corev1.Container {
	var out []corev1.Container
	for _, c := range containers {
		var ports []corev1.ContainerPort
		for _, cp := range c.Ports {
			if cp.Name != "" {
				ports = append(ports, corev1.ContainerPort{Name: cp.Name, Protocol: cp.Protocol, ContainerPort: cp.ContainerPort})
			}
		}
		if len(ports) > 0 {
			out = append(out, corev1.Container{Name: c.Name, Ports: ports})
		}
	}
	return out
}

func stripMeta(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns.Name, Labels: ns.Labels, UID: ns.UID, ResourceVersion: ns.ResourceVersion,
	}}, nil
}

func stripManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
		o.SetAnnotations(nil)
	}
	return obj, nil
}

// ownerNames keeps of each owner reference what names the workload.
func ownerNames(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if len(refs) == 0 {
		return nil
	}
	out := make([]metav1.OwnerReference, len(refs))
	for i, r := range refs {
		out[i] = metav1.OwnerReference{APIVersion: r.APIVersion, Kind: r.Kind, Name: r.Name, Controller: r.Controller}
	}
	return out
}
