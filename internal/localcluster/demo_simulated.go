package localcluster

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
)

// The demo on simulated nodes: no kube-controller-manager turns the shop's
// Deployments into pods, so the demo creates one pod per workload, in the
// nodes it names, and calls from the pods' network namespaces.

func demoPods() []PodSpec {
	p := func(name string, port int32) corev1.ContainerPort {
		return corev1.ContainerPort{Name: name, ContainerPort: port, Protocol: corev1.ProtocolTCP}
	}
	app := func(v string) map[string]string { return map[string]string{"app": v} }
	return []PodSpec{
		{Namespace: "shop", Name: "frontend", Node: "node-1", Labels: app("frontend"), Ports: []corev1.ContainerPort{p("http", 8080)}},
		{Namespace: "shop", Name: "checkout", Node: "node-2", Labels: app("checkout"), Ports: []corev1.ContainerPort{p("http", 8080)}},
		{Namespace: "shop", Name: "orders", Node: "node-1", Labels: app("orders"), Ports: []corev1.ContainerPort{p("http", 8080), p("metrics", 9090)}},
		{Namespace: "shop", Name: "payments", Node: "node-2", Labels: app("payments"), Ports: []corev1.ContainerPort{p("https", 8443), p("webhooks", 9443)}},
		{Namespace: "shop", Name: "coupon-bot", Node: "node-2", Labels: app("coupon-bot"), Ports: []corev1.ContainerPort{p("http", 8080)}},
		{Namespace: "monitoring", Name: "prometheus", Node: "node-2", Labels: map[string]string{"app.kubernetes.io/name": "prometheus"}, Ports: []corev1.ContainerPort{p("web", 9090)}},
	}
}

// createSimulatedShop applies the demo's namespaces and workloads, creates
// the demo pods, and returns how to call between them. A second run on the
// same cluster reuses the pods it finds.
func createSimulatedShop(ctx context.Context, c *Cluster, repoRoot string) (demoCaller, error) {
	if err := applyShopManifests(ctx, c, repoRoot); err != nil {
		return nil, err
	}
	pods := map[string]*Pod{}
	existing, err := c.Pods(ctx)
	if err != nil {
		return nil, err
	}
	for i := range existing {
		pods[existing[i].Key()] = &existing[i]
	}
	g, gctx := errgroup.WithContext(ctx)
	results := make([]*Pod, len(demoPods()))
	for i, spec := range demoPods() {
		if p, ok := pods[spec.Namespace+"/"+spec.Name]; ok {
			results[i] = p
			continue
		}
		// A cluster with fewer nodes than the demo names puts the rest on
		// the first node.
		if _, ok := c.Node(spec.Node); !ok {
			spec.Node = c.State.Nodes[0].Name
		}
		g.Go(func() error {
			p, err := c.CreatePod(gctx, spec)
			results[i] = p
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, p := range results {
		pods[p.Key()] = p
	}
	return func(_ context.Context, call DemoCall) (bool, error) {
		from, to := pods[call.From], pods[call.To]
		if from == nil || to == nil {
			return false, fmt.Errorf("demo pod %s or %s is missing", call.From, call.To)
		}
		return ProbeOnce(from, to, call.Port, 700*time.Millisecond) == nil, nil
	}, nil
}
