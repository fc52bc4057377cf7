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
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/palisade-dev/palisade/internal/kubeassets"
)

// Start runs a kube-apiserver with Palisade's CRDs installed and returns its
// config. The server is stopped when the test ends.
func Start(t testing.TB) *rest.Config {
	t.Helper()
	env := &envtest.Environment{
		BinaryAssetsDirectory: kubeassets.Dir(),
		CRDDirectoryPaths:     []string{filepath.Join(kubeassets.RepoRoot(), "config", "crd", "bases")},
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
