// Package kubeassets says where the Kubernetes binaries that this tree builds
// (hack/setup-test-env.sh) are cached, and where the repository is. Both the
// tests (envtest) and the local cluster binary read it, so it must not link
// the testing package.
package kubeassets

import (
	"os"
	"path/filepath"
	"runtime"
)

// K8sVersion is the Kubernetes version hack/setup-test-env.sh builds.
const K8sVersion = "v1.37.2"

// RepoRoot returns the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Dir returns the directory that holds kube-apiserver, etcd and kubectl:
// KUBEBUILDER_ASSETS when set (make test sets it), else the default cache.
func Dir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "palisade", "k8s", K8sVersion)
}
