//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	palisadev1alpha1 "github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/localcluster"
)

// TestDemo runs `make demo`'s scenario (the sample shop from config/samples)
// on the e2e cluster: every declared call succeeds and the undeclared one is
// blocked. Afterwards it removes the shop so the other tests start clean.
func TestDemo(t *testing.T) {
	e := clusterFor(t, "nftables")
	ctx := context.Background()
	t.Cleanup(func() { removeShop(t, e) })
	var out strings.Builder
	calls, err := localcluster.RunDemo(ctx, e.c, kubeassets.RepoRoot(), &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	declared, blocked := 0, 0
	for _, c := range calls {
		if c.Declared {
			declared++
		} else {
			blocked++
		}
	}
	if declared < 4 || blocked < 1 {
		t.Errorf("demo made %d declared and %d undeclared calls; want at least 4 and 1", declared, blocked)
	}
	for _, want := range []string{"palisade-default-deny", "palisade-orders", "BLOCKED", "Undeclared Callers", "coupon-bot"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}

func removeShop(t *testing.T, e *env) {
	ctx := context.Background()
	cl := e.c.Client
	for _, ns := range []string{"shop", "monitoring"} {
		if err := cl.DeleteAllOf(ctx, &palisadev1alpha1.ServiceIntent{}, client.InNamespace(ns)); err != nil {
			t.Errorf("delete intents in %s: %v", ns, err)
		}
		pods, err := e.c.Pods(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			if p.Namespace == ns {
				if err := e.c.DeletePod(ctx, p.Namespace, p.Name); err != nil {
					t.Errorf("delete pod %s: %v", p.Key(), err)
				}
			}
		}
	}
	// Leaving zero trust makes the controller remove its baseline policies.
	if err := localcluster.SetLabels(ctx, cl, &corev1.Namespace{}, client.ObjectKey{Name: "shop"}, map[string]string{}); err != nil {
		t.Errorf("remove the zero-trust label: %v", err)
	}
}
