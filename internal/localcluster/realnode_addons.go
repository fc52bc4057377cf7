package localcluster

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

//go:embed manifests/coredns.yaml
var coreDNSManifest []byte

// deployCoreDNS runs CoreDNS behind the kube-dns Service (10.96.0.10, the
// kubelets' clusterDNS).
func (c *Cluster) deployCoreDNS(ctx context.Context) error {
	if _, err := ApplyYAML(ctx, c.Client, coreDNSManifest); err != nil {
		return fmt.Errorf("deploy coredns: %w", err)
	}
	return nil
}

// DeployPalisade applies config/default, as a user does: the CRDs, the
// controller Deployment and the agent DaemonSet with their RBAC. A backend
// other than config/default's nftables goes in through a kustomize overlay
// (in the state directory) that replaces the agent's --backend argument.
func (c *Cluster) DeployPalisade(ctx context.Context, kubectl, configDir, backend string) error {
	dir := filepath.Join(configDir, "default")
	if backend != "" && backend != "nftables" {
		var err error
		if dir, err = c.backendOverlay(dir, backend); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.KubeconfigPath(),
		"apply", "--server-side", "--force-conflicts", "-k", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply -k %s: %w: %s", dir, err, out)
	}
	return nil
}

// agentBackendOverlay replaces the first argument of the agent container,
// config/agent/daemonset.yaml's --backend=nftables.
const agentBackendOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %s
patches:
- target: {kind: DaemonSet, name: palisade-agent}
  patch: |-
    - op: test
      path: /spec/template/spec/containers/0/args/0
      value: --backend=nftables
    - op: replace
      path: /spec/template/spec/containers/0/args/0
      value: --backend=%s
`

func (c *Cluster) backendOverlay(base, backend string) (string, error) {
	dir := filepath.Join(c.Dir, "palisade-"+backend)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(fmt.Sprintf(agentBackendOverlay, rel, backend)), 0o644)
}

// WaitRealNodesReady waits until every node is Ready and no longer carries
// the agent-not-ready taint (so Palisade's agent enforces there), and
// CoreDNS and the controller are available.
func (c *Cluster) WaitRealNodesReady(ctx context.Context, timeout time.Duration) error {
	if err := waitFor(timeout, "the nodes to be Ready without the "+v1alpha1.TaintAgentNotReady+" taint", func() error {
		for _, n := range c.State.Nodes {
			node, err := c.Clientset.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !nodeReady(node) {
				return fmt.Errorf("node %s is not Ready", n.Name)
			}
			if slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == v1alpha1.TaintAgentNotReady }) {
				return fmt.Errorf("node %s still has the %s taint", n.Name, v1alpha1.TaintAgentNotReady)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for _, d := range []struct{ ns, name string }{{"kube-system", "coredns"}, {"palisade-system", "palisade-controller"}} {
		if err := waitFor(timeout, "deployment "+d.ns+"/"+d.name+" to be available", func() error {
			dep, err := c.Clientset.AppsV1().Deployments(d.ns).Get(ctx, d.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !deploymentAvailable(dep) {
				return fmt.Errorf("%d of %d replicas available", dep.Status.AvailableReplicas, dep.Status.Replicas)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentAvailable {
			return cond.Status == corev1.ConditionTrue && d.Status.AvailableReplicas > 0
		}
	}
	return false
}
