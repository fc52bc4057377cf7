//go:build e2e && realnodes

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/localcluster"
)

// realNodesPods are agnhost pods in namespace rn: a server and a client on
// each node, so that every probe below is checked node-local and
// cross-node.
const realNodesPods = `{{range .}}---
apiVersion: v1
kind: Pod
metadata:
  name: {{.Name}}
  namespace: rn
  labels: {role: {{.Role}}}
spec:
  nodeSelector: {kubernetes.io/hostname: {{.Node}}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: agnhost
    image: ` + localcluster.AgnhostImage + `
    imagePullPolicy: IfNotPresent
    args: ["netexec", "--http-port=8080"]
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
{{end}}`

// realNodesPolicy lets only role=client-allowed pods reach the servers.
const realNodesPolicy = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: servers-from-allowed-clients
  namespace: rn
spec:
  podSelector:
    matchLabels: {role: server}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels: {role: client-allowed}
    ports:
    - {port: 8080, protocol: TCP}
`

// TestRealNodes brings up a cluster with real kubelets, deploys Palisade
// from config/default as images, and checks that a NetworkPolicy is
// enforced between real containers on both nodes, for each backend.
//
// It builds only with the tag realnodes (make test-e2e-real-nodes): it needs
// what hack/setup-real-nodes.sh builds, and the rest of the e2e suite runs on
// simulated nodes.
func TestRealNodes(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testRealNodes(t, backend) })
	}
}

func testRealNodes(t *testing.T, backend string) {
	ctx := context.Background()
	c := upRealNodes(t, "realnodes-"+backend, backend)

	type rnPod struct{ Name, Role, Node string }
	pods := []rnPod{
		{"server-1", "server", "node-1"}, {"server-2", "server", "node-2"},
		{"allowed-1", "client-allowed", "node-1"}, {"denied-2", "client-denied", "node-2"},
	}
	createRealNamespace(t, c, "rn")
	applyTemplate(t, c, realNodesPods, pods)
	ips := map[string]string{}
	if err := waitForCond(2*time.Minute, "the rn pods to be ready", func() error {
		for _, p := range pods {
			got, err := c.Clientset.CoreV1().Pods("rn").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !podReady(got) {
				return fmt.Errorf("pod %s not ready (%s)", p.Name, got.Status.Phase)
			}
			if got.Spec.NodeName != p.Node {
				return fmt.Errorf("pod %s on %s, want %s", p.Name, got.Spec.NodeName, p.Node)
			}
			ips[p.Name] = got.Status.PodIP
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	kubectl := filepath.Join(kubeassets.Dir(), "kubectl")
	// connects reports whether from reaches to; an error is a failed exec,
	// which says nothing about the policy.
	connects := func(from, to string) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.KubeconfigPath(), "exec", "-n", "rn", from, "--",
			"/agnhost", "connect", ips[to]+":8080", "--timeout=1s").CombinedOutput()
		switch {
		case err == nil:
			return true, nil
		case strings.Contains(string(out), "TIMEOUT"), strings.Contains(string(out), "REFUSED"):
			return false, nil
		default:
			return false, fmt.Errorf("exec in %s: %w: %s", from, err, out)
		}
	}
	expect := func(what string, want map[[2]string]bool) {
		t.Helper()
		if err := waitForCond(60*time.Second, what, func() error {
			var wrong []string
			for pair, ok := range want {
				got, err := connects(pair[0], pair[1])
				if err != nil {
					return err
				}
				if got != ok {
					wrong = append(wrong, fmt.Sprintf("%s -> %s: connected=%v, want %v", pair[0], pair[1], got, ok))
				}
			}
			if len(wrong) > 0 {
				return fmt.Errorf("%s", strings.Join(wrong, "; "))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	expect("every client to reach every server before any policy", map[[2]string]bool{
		{"allowed-1", "server-1"}: true, {"allowed-1", "server-2"}: true,
		{"denied-2", "server-1"}: true, {"denied-2", "server-2"}: true,
	})
	if _, err := localcluster.ApplyYAML(ctx, c.Client, []byte(realNodesPolicy)); err != nil {
		t.Fatal(err)
	}
	expect("the policy to admit only the allowed client, local and cross-node", map[[2]string]bool{
		{"allowed-1", "server-1"}: true, {"allowed-1", "server-2"}: true,
		{"denied-2", "server-1"}: false, {"denied-2", "server-2"}: false,
	})
	if err := c.Clientset.NetworkingV1().NetworkPolicies("rn").Delete(ctx, "servers-from-allowed-clients", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("the denied client to get through again once the policy is gone", map[[2]string]bool{
		{"denied-2", "server-1"}: true, {"denied-2", "server-2"}: true,
	})
	checkNothingServedToPods(t, c, kubectl)
}

// upRealNodes brings up a two-node real-node cluster with Palisade deployed
// (the simulated e2e clusters go first: they share the fabric's
// addresses), in a state directory of its own that leftovers of a killed
// run are removed from, and tears it down when the test ends.
func upRealNodes(t *testing.T, name, backend string) *localcluster.Cluster {
	t.Helper()
	if err := stopClusters(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "palisade-e2e", name)
	if err := localcluster.Down(dir); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := localcluster.UpRealNodes(context.Background(), localcluster.Config{
		Dir: dir, Prefix: "pe2e-rn", Nodes: 2, Backend: backend,
		BinDir: binDir, AssetsDir: kubeassets.Dir(), ConfigDir: filepath.Join(kubeassets.RepoRoot(), "config"),
		Log: t.Logf,
	})
	if err != nil {
		t.Fatalf("bring up real nodes: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Down(); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	t.Logf("real-node cluster with Palisade ready in %s", time.Since(start).Round(100*time.Millisecond))
	return c
}

// createRealNamespace creates namespace ns and waits for its default
// service account: pods are admitted only once it exists
// (kube-controller-manager creates it).
func createRealNamespace(t *testing.T, c *localcluster.Cluster, ns string) {
	t.Helper()
	ctx := context.Background()
	if _, err := localcluster.ApplyYAML(ctx, c.Client, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n")); err != nil {
		t.Fatal(err)
	}
	if err := waitForCond(30*time.Second, "service account "+ns+"/default", func() error {
		_, err := c.Clientset.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func applyTemplate(t *testing.T, c *localcluster.Cluster, text string, data any) {
	t.Helper()
	var b strings.Builder
	if err := template.Must(template.New("manifest").Parse(text)).Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	if _, err := localcluster.ApplyYAML(context.Background(), c.Client, []byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

func podReady(p *corev1.Pod) bool {
	c := podCondition(p, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// waitForCond polls check until it succeeds or timeout passes.
func waitForCond(timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
