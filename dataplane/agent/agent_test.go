package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/dataplane/agent"
	"github.com/palisade-dev/palisade/dataplane/agent/internal/agenttest"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// TestAgentProgramsTheKernelFromTheAPI runs the sync loop against a real API
// server, with the nftables backend in a network namespace, and follows a
// pod and a policy from the API into the kernel table.
func TestAgentProgramsTheKernelFromTheAPI(t *testing.T) {
	testenv.RequireRoot(t)
	e := agenttest.NewEnv(t)
	c, mustCreate := e.C, e.Create
	// ctx stops the agent; the cache runs until the test ends.
	ctx, cancel := context.WithCancel(e.Ctx)
	t.Cleanup(cancel)

	mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: map[string]string{"team": "x"}}})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "a", Labels: map[string]string{"app": "a"}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "none",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}
	mustCreate(pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.100.1.1", PodIPs: []corev1.PodIP{{IP: "10.100.1.1"}, {IP: "fd00:100::1:1"}}}
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatalf("set pod status: %v", err)
	}
	mustCreate(&networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "deny"},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}},
	})

	ns := netnstest.New(t, "agt")
	a, err := agent.New(agent.Config{NodeName: "node-a", MinInterval: 20 * time.Millisecond}, e.StartCache(), nft.New(nft.WithNetNSFd(ns.Fd)))
	if err != nil {
		t.Fatal(err)
	}
	if a.ReadyCheck(nil) == nil {
		t.Fatal("ready before any sync")
	}
	done := make(chan error, 1)
	go func() { done <- a.Start(ctx) }()

	agenttest.WaitFor(t, "agent ready", 15*time.Second, a.Ready)
	table := func() string { out, _ := ns.Try("nft", "list", "table", "inet", "palisade"); return out }
	agenttest.WaitFor(t, "pod in the ingress map", 15*time.Second, func() bool {
		return strings.Contains(table(), "10.100.1.1 : jump in-") && strings.Contains(table(), "fd00:100::1:1 : jump in-")
	})

	// A policy update reaches the kernel incrementally.
	mustCreate(&networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "allow-web"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.100.9.0/24"}}}}}},
	})
	agenttest.WaitFor(t, "new policy chain", 15*time.Second, func() bool {
		out := table()
		return strings.Contains(out, "x/allow-web") && strings.Contains(out, "10.100.9.0/24")
	})
	// Deleting the pod empties the maps; the stale group chains go.
	if err := c.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	agenttest.WaitFor(t, "pod gone from the maps", 15*time.Second, func() bool {
		out := table()
		return !strings.Contains(out, "10.100.1.1") && !strings.Contains(out, "chain in-")
	})

	// Stopping the agent leaves the table in place (fail closed).
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("agent returned %v", err)
	}
	if out, err := ns.Try("nft", "list", "table", "inet", "palisade"); err != nil || !strings.Contains(out, "chain ingress") {
		t.Fatalf("table gone after the agent stopped: %v\n%s", err, out)
	}
}
