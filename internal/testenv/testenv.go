// Package testenv starts a real kube-apiserver and etcd (controller-runtime's
// envtest) for tests, with Palisade's CRDs installed, and holds the other
// helpers that tests across the repo share.
//
// The binaries come from hack/setup-test-env.sh, which `make test` runs first;
// KUBEBUILDER_ASSETS points at them. When it is unset (a plain `go test` by a
// developer) the default cache directory is used.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// K8sVersion is the kube-apiserver version hack/setup-test-env.sh builds.
const K8sVersion = "v1.37.2"

// RepoRoot returns the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// AssetsDir returns the directory that holds kube-apiserver, etcd and kubectl.
func AssetsDir() string {
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

// RequireRoot skips the test, saying why, when it cannot program the kernel.
// CI runs as root, so there every such test runs.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and program netfilter; CI runs as root (make test)")
	}
}

// Start runs a kube-apiserver with Palisade's CRDs installed and returns its
// config. The server is stopped when the test ends.
func Start(t testing.TB) *rest.Config {
	t.Helper()
	env := &envtest.Environment{
		BinaryAssetsDirectory: AssetsDir(),
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	if _, err := os.Stat(filepath.Join(env.BinaryAssetsDirectory, "kube-apiserver")); err != nil {
		t.Fatalf("no kube-apiserver in %s: run hack/setup-test-env.sh (make test does): %v", env.BinaryAssetsDirectory, err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stop envtest: %v", err)
		}
	})
	cfg.QPS, cfg.Burst = 1000, 2000
	return cfg
}
