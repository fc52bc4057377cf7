//go:build e2e

// Package e2e is the end-to-end suite: a local cluster (real kube-apiserver,
// network namespaces as nodes and pods, one agent per node, the controller)
// per dataplane backend, reused across scenarios; every scenario is checked
// by the full probe matrix. Run with `make test-e2e` (root).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	palisadev1alpha1 "github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/localcluster"
)

var backends = []string{"nftables", "iptables"}

// binDir holds the binaries TestMain builds from the tree under test.
var binDir string

func stateDir(backend string) string {
	return filepath.Join(os.TempDir(), "palisade-e2e", backend)
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: needs root (network namespaces, netfilter); CI runs as root (make test-e2e)")
		return 1
	}
	// A run killed by -timeout cannot clean up: its successor does.
	for _, b := range backends {
		if err := localcluster.Down(stateDir(b)); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: remove leftovers:", err)
			return 1
		}
	}
	dir, err := os.MkdirTemp("", "palisade-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/",
		"./cmd/agent", "./cmd/controller", "./cmd/kubectl-palisade", "./hack/podserver", "./hack/local-cluster")
	build.Dir = kubeassets.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build binaries: %v\n%s", err, out)
		return 1
	}
	// Ctrl-C (or a CI runner's SIGTERM) still tears the clusters down.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		_ = stopClusters()
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}()
	code := m.Run()
	if err := stopClusters(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: tear down:", err)
		if code == 0 {
			code = 1
		}
	}
	_ = os.Remove(filepath.Dir(stateDir(backends[0]))) // only if empty
	return code
}

// env is one backend's cluster with the netpol layout and cluster-dns.
type env struct {
	backend string
	c       *localcluster.Cluster
	pods    map[string]*localcluster.Pod // "x/a" -> pod
	layout  []*localcluster.Pod          // x/a ... z/c
	dns     *localcluster.Pod
}

var (
	clustersMu sync.Mutex
	clusters   = map[string]*env{}
)

func stopClusters() error {
	clustersMu.Lock()
	defer clustersMu.Unlock()
	var errs []string
	for b, e := range clusters {
		if err := e.c.Down(); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", b, err))
		}
		delete(clusters, b)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// clusterFor returns the backend's cluster, bringing it up (and any other
// backend's down: one cluster at a time keeps 2 cores responsive).
func clusterFor(t *testing.T, backend string) *env {
	t.Helper()
	clustersMu.Lock()
	e, ok := clusters[backend]
	clustersMu.Unlock()
	if ok {
		return e
	}
	if err := stopClusters(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	root := kubeassets.RepoRoot()
	c, err := localcluster.Up(ctx, localcluster.Config{
		Dir:       stateDir(backend),
		Prefix:    "pe2e-" + backend[:3],
		Nodes:     2,
		Backend:   backend,
		BinDir:    binDir,
		AssetsDir: kubeassets.Dir(),
		CRDDir:    filepath.Join(root, "config", "crd", "bases"),
		Log:       t.Logf,
	})
	if err != nil {
		t.Fatalf("bring up the %s cluster: %v", backend, err)
	}
	e = &env{backend: backend, c: c, pods: map[string]*localcluster.Pod{}}
	clustersMu.Lock()
	clusters[backend] = e
	clustersMu.Unlock()
	if e.dns, err = c.DeployClusterDNS(ctx); err != nil {
		t.Fatalf("deploy cluster-dns: %v", err)
	}
	if e.layout, err = c.DeployNetpolLayout(ctx); err != nil {
		t.Fatalf("deploy the netpol layout: %v", err)
	}
	for _, p := range append([]*localcluster.Pod{e.dns}, e.layout...) {
		e.pods[p.Key()] = p
	}
	// Nothing is isolated yet: every probe must pass before any scenario.
	if err := e.matrix(true).WaitFor(ctx, e.matrix(true).Expect(allowAll), 60*time.Second); err != nil {
		t.Fatalf("%s cluster: open network not reachable: %v", backend, err)
	}
	t.Logf("%s cluster ready in %s", backend, time.Since(start).Round(100*time.Millisecond))
	return e
}

func allowAll(_, _ *localcluster.Pod, _ localcluster.Port) bool { return true }

// matrix is the layout's pods, plus cluster-dns when withDNS.
func (e *env) matrix(withDNS bool) localcluster.Matrix {
	pods := append([]*localcluster.Pod(nil), e.layout...)
	if withDNS {
		pods = append(pods, e.dns)
	}
	return localcluster.Matrix{Pods: pods}
}

func (e *env) pod(key string) *localcluster.Pod {
	p, ok := e.pods[key]
	if !ok {
		panic("no pod " + key)
	}
	return p
}

const enforceTimeout = 45 * time.Second

// expect waits until the matrix (with cluster-dns when withDNS) matches rule.
func (e *env) expect(t *testing.T, withDNS bool, rule func(from, to *localcluster.Pod, port localcluster.Port) bool) {
	t.Helper()
	m := e.matrix(withDNS)
	if err := m.WaitFor(context.Background(), m.Expect(rule), enforceTimeout); err != nil {
		t.Fatal(err)
	}
}

func (e *env) apply(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := localcluster.ApplyObject(context.Background(), e.c.Client, o); err != nil {
			t.Fatalf("apply %T %s: %v", o, client.ObjectKeyFromObject(o), err)
		}
	}
}

func (e *env) delete(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := client.IgnoreNotFound(e.c.Client.Delete(context.Background(), o)); err != nil {
			t.Fatalf("delete %s: %v", client.ObjectKeyFromObject(o), err)
		}
	}
}

// reset removes every NetworkPolicy, intent, Service and Deployment the
// scenarios made, restores the layout's labels, and waits until the whole
// matrix is open again, so scenarios do not see each other.
func (e *env) reset(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	cl := e.c.Client
	for _, ns := range append([]string{"kube-system"}, localcluster.LayoutNamespaces...) {
		for _, o := range []client.Object{&palisadev1alpha1.ServiceIntent{}, &networkingv1.NetworkPolicy{}} {
			if err := cl.DeleteAllOf(ctx, o, client.InNamespace(ns)); err != nil && !isNoKind(err) {
				t.Errorf("reset: delete %T in %s: %v", o, ns, err)
			}
		}
		var svcs corev1.ServiceList
		if err := cl.List(ctx, &svcs, client.InNamespace(ns), client.MatchingLabels{testObjectLabel: "true"}); err == nil {
			for i := range svcs.Items {
				_ = cl.Delete(ctx, &svcs.Items[i])
			}
		}
	}
	for _, ns := range localcluster.LayoutNamespaces {
		if err := localcluster.SetLabels(ctx, cl, &corev1.Namespace{}, client.ObjectKey{Name: ns}, map[string]string{"ns": ns}); err != nil {
			t.Errorf("reset namespace %s labels: %v", ns, err)
		}
		for _, p := range localcluster.LayoutPods {
			if err := localcluster.SetLabels(ctx, cl, &corev1.Pod{}, client.ObjectKey{Namespace: ns, Name: p}, map[string]string{"pod": p}); err != nil {
				t.Errorf("reset pod %s/%s labels: %v", ns, p, err)
			}
		}
	}
	if err := e.deleteWorkloads(ctx); err != nil {
		t.Errorf("reset workloads: %v", err)
	}
	// Intents' cross-namespace policies are removed by the controller's
	// finalizer: wait for them before checking the matrix.
	if err := waitNoPolicies(ctx, cl); err != nil {
		t.Errorf("reset: %v", err)
	}
	m := e.matrix(true)
	if err := m.WaitFor(ctx, m.Expect(allowAll), enforceTimeout); err != nil {
		t.Fatalf("reset: network did not open again: %v", err)
	}
}

const testObjectLabel = "e2e.palisade.dev/test-object"

// scenario runs fn as a subtest with a reset after it, whatever happens.
func (e *env) scenario(t *testing.T, name string, fn func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		t.Cleanup(func() { e.reset(t) })
		fn(t)
	})
}
