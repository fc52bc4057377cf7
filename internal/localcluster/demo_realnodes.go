package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The demo on real nodes: the shop is Deployments of the podserver image
// behind Services, scheduled by kube-scheduler over the nodes, and every
// call is a request from one of its containers (kubectl exec) to a
// Service's DNS name, through CoreDNS and kube-proxy.

// demoNamespaces are the namespaces the shop runs in.
var demoNamespaces = []string{"shop", "monitoring"}

// deployShop applies the demo's namespaces and workloads, waits until every
// Deployment has rolled out, and returns how to call from the shop's
// containers. On a cluster that already runs the shop it changes nothing.
func deployShop(ctx context.Context, c *Cluster, repoRoot string, say func(string, ...any)) (demoCaller, error) {
	if err := applyFile(ctx, c, filepath.Join(repoRoot, "config", "samples", "namespaces.yaml")); err != nil {
		return nil, err
	}
	// The API server admits a namespace's pods only once its default
	// service account exists (kube-controller-manager creates it); pods the
	// ReplicaSet controller fails to create before are retried with backoff.
	for _, ns := range demoNamespaces {
		if err := waitFor(time.Minute, "service account "+ns+"/default", func() error {
			_, err := c.Clientset.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			return err
		}); err != nil {
			return nil, err
		}
	}
	shop := filepath.Join(repoRoot, "hack", "demo", "shop.yaml")
	b, err := os.ReadFile(shop)
	if err != nil {
		return nil, err
	}
	applied, err := ApplyYAML(ctx, c.Client, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shop, err)
	}
	start := time.Now()
	for _, u := range applied {
		if u.GetKind() != "Deployment" {
			continue
		}
		if err := waitRolledOut(ctx, c, u.GetNamespace(), u.GetName(), 3*time.Minute); err != nil {
			return nil, err
		}
	}
	say("the shop's Deployments rolled out in %s", time.Since(start).Round(100*time.Millisecond))
	return execCaller(c), nil
}

// waitRolledOut waits, as kubectl rollout status does, until the
// Deployment's current template runs in every replica and they are
// available.
func waitRolledOut(ctx context.Context, c *Cluster, ns, name string, timeout time.Duration) error {
	return waitFor(timeout, "deployment "+ns+"/"+name+" to roll out", func() error {
		d, err := c.Clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return rolloutPending(d)
	})
}

func rolloutPending(d *appsv1.Deployment) error {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		return fmt.Errorf("generation %d not yet observed", d.Generation)
	case st.UpdatedReplicas < want:
		return fmt.Errorf("%d of %d replicas updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Errorf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < want:
		return fmt.Errorf("%d of %d replicas available", st.AvailableReplicas, want)
	}
	return nil
}

// execCaller makes a call from a container of the caller's Deployment with
// podserver's probe: it resolves the Service's name with the pod's resolver
// and connects, or (DNS) asks CoreDNS for a Service's record.
func execCaller(c *Cluster) demoCaller {
	return func(ctx context.Context, call DemoCall) (bool, error) {
		ns, name, _ := strings.Cut(call.From, "/")
		args := []string{"--kubeconfig", c.KubeconfigPath(), "exec", "-n", ns, "deploy/" + name, "-c", "app", "--",
			"/podserver", "probe", "--timeout", "1s", "--addr", call.Addr}
		if call.Port.Port == DNSPort {
			args = append(args, "--proto", "dns-"+strings.ToLower(string(call.Port.Protocol)), "--name", "orders.shop.svc.cluster.local")
		} else {
			args = append(args, "--proto", strings.ToLower(string(call.Port.Protocol)))
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, KubectlPath(), args...).CombinedOutput()
		switch {
		case err == nil:
			return true, nil
		case strings.Contains(string(out), "blocked or unreachable"):
			return false, nil
		default:
			return false, fmt.Errorf("kubectl exec -n %s deploy/%s: %w: %s", ns, name, err, strings.TrimSpace(string(out)))
		}
	}
}
