// Package cachetransform holds the informer cache transforms both
// binaries use: each keeps of an object only what its readers need, so
// that a cache of a big cluster stays small (a full Pod is tens of KiB,
// mostly container specs, status and managed fields).
package cachetransform

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// Identity keeps what makes a cached object addressable.
func Identity(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
}

// PodFields says what a cache keeps of a Pod beside what every reader
// needs: identity, labels, owner references (the pod's workload), creation
// and deletion timestamps, node, hostNetwork, phase and IPs.
type PodFields struct {
	// NamedPorts keeps the name and named ports of each container and init
	// container: NetworkPolicy ports by name resolve against them.
	NamedPorts bool
	// ReadyCondition keeps the type and status of the PodReady condition.
	ReadyCondition bool
}

// Pod returns the transform that reduces a Pod to the fields f keeps.
// Other objects pass unchanged.
func Pod(f PodFields) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return obj, nil
		}
		meta := Identity(&p.ObjectMeta)
		meta.Labels = p.Labels
		meta.OwnerReferences = p.OwnerReferences
		meta.CreationTimestamp = p.CreationTimestamp
		meta.DeletionTimestamp = p.DeletionTimestamp
		out := &corev1.Pod{
			TypeMeta:   p.TypeMeta,
			ObjectMeta: meta,
			Spec:       corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
			Status:     corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
		}
		if f.NamedPorts {
			// Restartable init containers (sidecars) serve traffic, so
			// their named ports count too.
			out.Spec.InitContainers = namedPortsOnly(p.Spec.InitContainers)
			out.Spec.Containers = namedPortsOnly(p.Spec.Containers)
		}
		if f.ReadyCondition {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady {
					out.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
				}
			}
		}
		return out, nil
	}
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

// NamespaceLabels reduces a Namespace to its identity and labels (what
// namespace selectors match). Other objects pass unchanged.
func NamespaceLabels(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	meta := Identity(&ns.ObjectMeta)
	meta.Labels = ns.Labels
	return &corev1.Namespace{ObjectMeta: meta}, nil
}

// DropManagedFieldsAndAnnotations clears an object's managed fields and
// annotations (the last-applied configuration alone can be as big as the
// object) and keeps the rest.
func DropManagedFieldsAndAnnotations(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
		o.SetAnnotations(nil)
	}
	return obj, nil
}

// Node reduces a Node to its identity, labels, timestamps and taints, not
// its status (images, conditions, addresses), which would dominate a cache
// of a large cluster. Other objects pass unchanged.
func Node(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	meta := Identity(&n.ObjectMeta)
	meta.Labels = n.Labels
	meta.CreationTimestamp = n.CreationTimestamp
	meta.DeletionTimestamp = n.DeletionTimestamp
	return &corev1.Node{TypeMeta: n.TypeMeta, ObjectMeta: meta, Spec: corev1.NodeSpec{Taints: n.Spec.Taints}}, nil
}
