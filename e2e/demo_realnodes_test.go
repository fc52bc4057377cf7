//go:build e2e && realnodes

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	palisadev1alpha1 "github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/localcluster"
)

// TestRealNodesDemo runs `make demo` (the sample shop as Deployments behind
// Services) on real nodes: the shop's pods spread over both nodes beside
// Palisade's own, every declared call made from a container to a Service's
// DNS name gets through, coupon-bot's is blocked and shows on the orders
// intent's status as a Deployment. A second run on the same cluster (make
// demo again) gives the same result.
func TestRealNodesDemo(t *testing.T) {
	ctx := context.Background()
	c := upRealNodes(t, "realnodes-demo", "nftables")
	for run := 1; run <= 2; run++ {
		var out strings.Builder
		calls, err := localcluster.RunDemo(ctx, c, kubeassets.RepoRoot(), &out)
		t.Logf("demo run %d:\n%s", run, out.String())
		if err != nil {
			t.Fatalf("demo run %d: %v", run, err)
		}
		declared, blocked := 0, 0
		for _, call := range calls {
			if call.OK != call.Declared || call.Err != nil {
				t.Errorf("run %d: %s -> %s (%s): ok=%v err=%v, declared %v", run, call.From, call.To, call.Addr, call.OK, call.Err, call.Declared)
			}
			if call.Declared {
				declared++
			} else {
				blocked++
			}
		}
		if declared < 5 || blocked < 1 {
			t.Errorf("run %d: %d declared and %d undeclared calls; want at least 5 and 1", run, declared, blocked)
		}
		for _, want := range []string{"palisade-controller", "palisade-agent", "coredns", "Undeclared Callers", "coupon-bot", "BLOCKED", "ALLOWED"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run %d: demo output lacks %q", run, want)
			}
		}
	}

	var si palisadev1alpha1.ServiceIntent
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "orders"}, &si); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(si.Status.UndeclaredCallers, func(u palisadev1alpha1.UndeclaredCaller) bool {
		return u.Source.WorkloadKind == "Deployment" && u.Source.WorkloadName == "coupon-bot"
	}) {
		t.Errorf("orders intent's undeclared callers lack Deployment coupon-bot: %+v", si.Status.UndeclaredCallers)
	}

	nodes := map[string]map[string]bool{} // namespace -> nodes its pods run on
	for _, ns := range []string{"shop", "monitoring", "palisade-system"} {
		pods, err := c.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodes[ns] = map[string]bool{}
		for _, p := range pods.Items {
			if !podReady(&p) {
				t.Errorf("pod %s/%s is not ready (%s)", ns, p.Name, p.Status.Phase)
			}
			nodes[ns][p.Spec.NodeName] = true
		}
	}
	if len(nodes["shop"]) != 2 {
		t.Errorf("the shop's pods run on %v; want both nodes", nodes["shop"])
	}
	if len(nodes["palisade-system"]) != 2 {
		t.Errorf("Palisade's pods run on %v; want both nodes (an agent on each)", nodes["palisade-system"])
	}
}
