//go:build tools

// Package tools pins the Kubernetes control-plane binaries that the tests and
// the local cluster run. It is its own module so that the project's go.mod
// never pulls in k8s.io/kubernetes.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
