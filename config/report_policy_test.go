package config_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// TestAgentWritesOnlyItsOwnReport applies config/agent (RBAC and the
// admission policy) to a real API server and writes NodeFlowReports as the
// agent's service account, with the node extra a pod-bound token carries:
// its own node's report is admitted, another node's, or one without a node,
// is refused.
func TestAgentWritesOnlyItsOwnReport(t *testing.T) {
	cfg := testenv.Start(t)
	admin, _ := testenv.Client(t, cfg)
	ctx := context.Background()
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	for _, obj := range kustomize(t, "agent") {
		if obj.GetKind() == "DaemonSet" {
			continue
		}
		if err := admin.Create(ctx, obj); err != nil {
			t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	asAgentOn := func(node string) client.Client {
		c := rest.CopyConfig(cfg)
		c.Impersonate = rest.ImpersonationConfig{UserName: user("palisade-agent"),
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}}
		if node != "" {
			c.Impersonate.Extra = map[string][]string{"authentication.kubernetes.io/node-name": {node}}
		}
		cl, _ := testenv.Client(t, c)
		return cl
	}
	report := func(name, nodeName string) *v1alpha1.NodeFlowReport {
		now := metav1.Now()
		return &v1alpha1.NodeFlowReport{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.NodeFlowReportSpec{NodeName: nodeName, WindowStart: now, ReportedAt: now, IntervalSeconds: 10}}
	}
	refused := func(err error) bool { return err != nil && strings.Contains(err.Error(), "palisade-agent-own-report") }

	// The policy takes effect once the API server has loaded it: wait for
	// the first refusal.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := asAgentOn("node-a").Create(ctx, report("node-b", "node-b"))
		if refused(err) {
			break
		}
		if err == nil {
			if err := admin.Delete(ctx, report("node-b", "node-b")); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("another node's report still admitted 30 s after the policy was created: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for name, c := range map[string]struct {
		as     client.Client
		report *v1alpha1.NodeFlowReport
	}{
		"no node in the token":                {asAgentOn(""), report("node-a", "node-a")},
		"its own name, another spec.nodeName": {asAgentOn("node-a"), report("node-a", "node-b")},
	} {
		if err := c.as.Create(ctx, c.report); !refused(err) {
			t.Errorf("%s: %v, want the policy's refusal", name, err)
		}
	}
	own := report("node-a", "node-a")
	if err := asAgentOn("node-a").Create(ctx, own); err != nil {
		t.Fatalf("the agent's own report: %v", err)
	}
	own.Spec.IntervalSeconds = 20
	if err := asAgentOn("node-a").Update(ctx, own); err != nil {
		t.Errorf("update of the agent's own report: %v", err)
	}
	if err := asAgentOn("node-b").Update(ctx, own); !refused(err) {
		t.Errorf("update of node-a's report by node-b's agent: %v, want the policy's refusal", err)
	}
	// Anyone else (here the admin) is not matched.
	if err := admin.Create(ctx, report("node-c", "node-c")); err != nil {
		t.Errorf("the admin's write: %v", err)
	}
}
