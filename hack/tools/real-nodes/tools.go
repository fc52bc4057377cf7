//go:build tools

// Package tools pins the node binaries and test images of the local
// cluster's real-node mode. hack/setup-real-nodes.sh copies it into a
// throwaway wrapper module so that the project's go.mod never pulls in
// k8s.io/kubernetes.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/test/images/agnhost"
)
