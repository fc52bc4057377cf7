package agent

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheOptions returns cache options that keep only what policy evaluation
// reads of each cached object, to keep the agent's memory low on big
// clusters (a full Pod is tens of KiB).
func CacheOptions() cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:       {Transform: StripPod},
			&corev1.Namespace{}: {Transform: stripMeta},
		},
		DefaultTransform: stripManagedFields,
	}
}

// StripPod reduces a Pod to name, namespace, labels, node, hostNetwork,
// container ports, phase and IPs.
func StripPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, Labels: p.Labels,
			UID: p.UID, ResourceVersion: p.ResourceVersion,
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
