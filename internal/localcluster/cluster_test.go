package localcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/netns"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// TestClusterLifecycle brings up a control plane and two nodes without agents,
// runs pods on both nodes, probes them over every protocol, deletes one, and
// checks that Down leaves no namespace, process or file behind.
func TestClusterLifecycle(t *testing.T) {
	testenv.RequireRoot(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./hack/podserver")
	build.Dir = kubeassets.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build podserver: %v\n%s", err, out)
	}
	dir := filepath.Join(os.TempDir(), "palisade-framework-test")
	if err := Down(dir); err != nil {
		t.Fatalf("remove leftovers: %v", err)
	}
	ctx := context.Background()
	c, err := Up(ctx, Config{
		Dir: dir, Prefix: "pfw", Nodes: 2, BinDir: bin, AssetsDir: kubeassets.Dir(),
		CRDDir: filepath.Join(kubeassets.RepoRoot(), "config", "crd", "bases"), NoAgents: true, NoController: true, Log: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	down := func() {
		if err := c.Down(); err != nil {
			t.Errorf("down: %v", err)
		}
	}
	t.Cleanup(down)
	ports := layoutPorts()
	a, err := c.CreatePod(ctx, PodSpec{Namespace: "x", Name: "a", Node: "node-1", Labels: map[string]string{"pod": "a"}, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreatePod(ctx, PodSpec{Namespace: "x", Name: "b", Node: "node-2", Labels: map[string]string{"pod": "b"}, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	dns, err := c.DeployClusterDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.Netns != "pfw-x-a" || !netns.Exists(a.Netns) {
		t.Errorf("pod x/a netns = %q (exists %v), want pfw-x-a", a.Netns, netns.Exists(a.Netns))
	}
	var obj corev1.Pod
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "x", Name: "b"}, &obj); err != nil {
		t.Fatal(err)
	}
	if obj.Status.Phase != corev1.PodRunning || obj.Status.PodIP != b.IP.String() || obj.Spec.NodeName != "node-2" {
		t.Errorf("pod x/b: phase %s ip %s node %s; want Running %s node-2", obj.Status.Phase, obj.Status.PodIP, obj.Spec.NodeName, b.IP)
	}
	// Across nodes, both ways, every protocol, and DNS.
	m := Matrix{Pods: []*Pod{a, b, dns}, Timeout: 2 * time.Second}
	if err := m.WaitFor(ctx, m.Expect(func(_, _ *Pod, _ Port) bool { return true }), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// A port nobody serves is refused.
	if err := ProbeOnce(a, b, Port{Port: 82, Protocol: corev1.ProtocolTCP}, 500*time.Millisecond); err == nil {
		t.Error("probe to a port x/b does not serve succeeded")
	}

	if err := c.DeletePod(ctx, "x", "b"); err != nil {
		t.Fatal(err)
	}
	if netns.Exists(b.Netns) {
		t.Errorf("netns %s survived the pod", b.Netns)
	}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "x", Name: "b"}, &obj); !apierrors.IsNotFound(err) {
		t.Errorf("pod object x/b after delete: %v", err)
	}
	if err := ProbeOnce(a, b, Port{Port: 80, Protocol: corev1.ProtocolTCP}, 500*time.Millisecond); err == nil {
		t.Error("deleted pod still answers")
	}

	recorded := c.recordedNetns()
	pidDir := filepath.Join(dir, "pids")
	entries, _ := os.ReadDir(pidDir)
	type proc struct {
		pid  int
		prog string
	}
	var procs []proc
	for _, e := range entries {
		if pid, prog, err := readPidFile(filepath.Join(pidDir, e.Name())); err == nil {
			procs = append(procs, proc{pid, prog})
		}
	}
	if len(procs) < 4 { // etcd, apiserver, two pod servers
		t.Errorf("only %d processes recorded", len(procs))
	}
	down()
	down() // idempotent
	for _, ns := range recorded {
		if netns.Exists(ns) {
			t.Errorf("netns %s left after down", ns)
		}
	}
	for _, p := range procs {
		if processAlive(p.pid, p.prog) {
			t.Errorf("process %d (%s) left after down", p.pid, p.prog)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir %s left after down: %v", dir, err)
	}
}
