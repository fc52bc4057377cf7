package policy

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// PodFromAPI reduces a Pod to what the model reads. Unparseable IPs are
// dropped (the pod then matches by its other IPs, or not at all).
func PodFromAPI(p *corev1.Pod) Pod {
	out := Pod{
		Namespace:   p.Namespace,
		Name:        p.Name,
		Labels:      p.Labels,
		NodeName:    p.Spec.NodeName,
		HostNetwork: p.Spec.HostNetwork,
		Finished:    p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed,
	}
	seen := map[netip.Addr]bool{}
	add := func(s string) {
		if ip, err := netip.ParseAddr(s); err == nil && !seen[ip.Unmap()] {
			seen[ip.Unmap()] = true
			out.IPs = append(out.IPs, ip.Unmap())
		}
	}
	for _, ip := range p.Status.PodIPs {
		add(ip.IP)
	}
	if p.Status.PodIP != "" {
		add(p.Status.PodIP)
	}
	for _, containers := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range containers {
			for _, cp := range c.Ports {
				if cp.Name == "" {
					continue
				}
				out.Ports = append(out.Ports, ContainerPort{Name: cp.Name, Protocol: cp.Protocol, Port: cp.ContainerPort})
			}
		}
	}
	return out
}

// NamespaceFromAPI reduces a Namespace to what selectors read.
func NamespaceFromAPI(ns *corev1.Namespace) Namespace {
	return Namespace{Name: ns.Name, Labels: ns.Labels}
}
