package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/internal/cachetransform"
)

// CacheOptions are the manager's cache options the controllers expect: pods
// are cached with only what the intents need (labels, owners, node, phase,
// host network, address) and their readiness (the node taint controller
// waits for the agent pod's), not their whole spec and status, which
// dominate the controller's memory in a large cluster; nodes with only their
// taints.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:  {Transform: cachetransform.Pod(cachetransform.PodFields{ReadyCondition: true})},
		&corev1.Node{}: {Transform: cachetransform.Node},
	}}
}
