//go:build e2e && realnodes

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/localcluster"
	"github.com/palisade-dev/palisade/internal/localcluster/probe"
)

// noAgentLabel on a node keeps the agent DaemonSet off it once the
// DaemonSet's pod template requires its absence (agentOffLabelledNodes).
const noAgentLabel = "palisade.dev/e2e-no-agent"

// pinnedServer can only go to node-2; the policy isolates it (role=server).
var pinnedServer = []rrPod{{"pinned", "server", "node-2"}}

const agentOffLabelledNodes = `{"spec":{"template":{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":` +
	`{"nodeSelectorTerms":[{"matchExpressions":[{"key":"` + noAgentLabel + `","operator":"DoesNotExist"}]}]}}}}}}}`

// notReadyWorkload is a Deployment the scheduler may place on any node,
// created while node-2 has no ready agent together with pinnedServer.
const notReadyWorkload = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: rr}
spec:
  replicas: 2
  selector:
    matchLabels: {role: web}
  template:
    metadata:
      labels: {role: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: pause
        image: ` + localcluster.PauseImage + `
        imagePullPolicy: IfNotPresent
`

// testAgentNotReadyNode: node-2 loses its agent pod (the DaemonSet is kept
// off it) and carries the startup taint, as a node does when it registers
// (kubelet registerWithTaints) before its agent runs. Nothing may be
// scheduled there until an agent is ready on it: the controller keeps the
// taint while there is none and lifts it once the agent is Ready. Traffic
// flows throughout: the rules node-2's agent left stay in force while no
// agent runs there.
//
// The controller does not put the taint back on a node whose agent stops
// being ready (it only lifts it), hence the test taints the node itself.
func (e *rrEnv) testAgentNotReadyNode(t *testing.T) {
	const node = "node-2"
	ctx := context.Background()
	nodes := e.c.Clientset.CoreV1().Nodes()
	figures := map[string]any{}
	pr := e.startTraffic(t)

	// Keep the agent off node-2: the DaemonSet controller deletes its pod.
	start := time.Now()
	if _, err := nodes.Patch(ctx, node, types.MergePatchType, []byte(`{"metadata":{"labels":{"`+noAgentLabel+`":"true"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = nodes.Patch(context.Background(), node, types.MergePatchType, []byte(`{"metadata":{"labels":{"`+noAgentLabel+`":null}}}`), metav1.PatchOptions{})
	})
	ds, err := e.c.Clientset.AppsV1().DaemonSets(agentNamespace).Patch(ctx, agentDaemonSet, types.StrategicMergePatchType, []byte(agentOffLabelledNodes), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitForCond(2*time.Minute, "the agent pod to leave "+node, func() error {
		if p, err := e.agentPod(node, true); err != nil || p != nil {
			return fmt.Errorf("agent pod still on %s: %v", node, err)
		}
		return e.rolledOut(ds.Generation)
	}); err != nil {
		t.Fatal(err)
	}
	figures["agentGoneMs"] = time.Since(start).Milliseconds()

	// The node as it registers: tainted, no agent.
	if err := e.setStartupTaint(ctx, node); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if _, err := localcluster.ApplyYAML(ctx, e.c.Client, []byte(notReadyWorkload)); err != nil {
		t.Fatal(err)
	}
	applyTemplate(t, e.c, reliabilityPods, pinnedServer)
	if err := waitForCond(time.Minute, "pinned to be unschedulable for the startup taint and web's pods to be scheduled", func() error {
		pinned, err := e.c.Clientset.CoreV1().Pods("rr").Get(ctx, "pinned", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pinned.Spec.NodeName != "" {
			t.Fatalf("pinned was scheduled on %s while its agent is not ready", pinned.Spec.NodeName)
		}
		// The scheduler names no taint ("1 node(s) had untolerated
		// taint(s)"): the startup taint is the only one node-2 has.
		c := podCondition(pinned, corev1.PodScheduled)
		if c == nil || c.Reason != corev1.PodReasonUnschedulable || !strings.Contains(c.Message, "untolerated taint") {
			return fmt.Errorf("pinned not reported unschedulable for a taint yet (%v)", c)
		}
		if taints, err := e.taints(ctx, node); err != nil || len(taints) != 1 || taints[0].Key != v1alpha1.TaintAgentNotReady {
			return fmt.Errorf("%s has taints %v, want only %s (%v)", node, taints, v1alpha1.TaintAgentNotReady, err)
		}
		web, err := e.c.Clientset.CoreV1().Pods("rr").List(ctx, metav1.ListOptions{LabelSelector: "role=web"})
		if err != nil {
			return err
		}
		scheduled := 0
		for _, p := range web.Items {
			switch p.Spec.NodeName {
			case "":
			case node:
				t.Fatalf("%s was scheduled on %s while its agent is not ready", p.Name, node)
			default:
				scheduled++
			}
		}
		if scheduled < 2 {
			return fmt.Errorf("%d of web's 2 pods scheduled", scheduled)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	figures["unschedulableSeenMs"] = time.Since(created).Milliseconds()
	if tainted, err := e.hasStartupTaint(ctx, node); err != nil || !tainted {
		t.Fatalf("%s lost the startup taint with no agent on it (err %v)", node, err)
	}

	// Let the agent back: it starts, syncs, becomes Ready; the controller
	// lifts the taint; pinned is scheduled there.
	unblocked := time.Now()
	if _, err := nodes.Patch(ctx, node, types.MergePatchType, []byte(`{"metadata":{"labels":{"`+noAgentLabel+`":null}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var agentReady, untainted, scheduled time.Time
	var agent, pinned *corev1.Pod
	var newPod *localcluster.Prober
	var addressSeen time.Time
	if err := waitForCond(2*time.Minute, "the agent on "+node+" to be ready, the taint lifted and pinned scheduled there", func() error {
		now := time.Now()
		if agentReady.IsZero() {
			p, err := e.agentPod(node, false)
			if err != nil || p == nil || !podReady(p) {
				return fmt.Errorf("agent on %s not ready yet (%v)", node, err)
			}
			agent, agentReady = p, now
		}
		if untainted.IsZero() {
			tainted, err := e.hasStartupTaint(ctx, node)
			if err != nil || tainted {
				return fmt.Errorf("%s still tainted (%v)", node, err)
			}
			untainted = now
		}
		p, err := e.c.Clientset.CoreV1().Pods("rr").Get(ctx, "pinned", metav1.GetOptions{})
		if err != nil || p.Spec.NodeName == "" {
			return fmt.Errorf("pinned not scheduled yet (%v)", err)
		}
		if scheduled.IsZero() {
			scheduled = now
		}
		if newPod == nil && p.Status.PodIP != "" {
			newPod, addressSeen = e.probeNewServer(t, "denied-1", p), now
		}
		if !podReady(p) {
			return fmt.Errorf("pinned not ready yet")
		}
		pinned = p
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	figures["agentReadyAfterUnblockMs"] = agentReady.Sub(unblocked).Milliseconds()
	figures["taintLiftedAfterUnblockMs"] = untainted.Sub(unblocked).Milliseconds()
	figures["pinnedScheduledAfterUnblockMs"] = scheduled.Sub(unblocked).Milliseconds()
	figures["pinnedReadyAfterUnblockMs"] = time.Since(unblocked).Milliseconds()
	// The API server's own clock, to the second: the scheduler bound pinned
	// no earlier than the agent pod became Ready.
	agentReadyAt := podCondition(agent, corev1.PodReady).LastTransitionTime
	boundAt := podCondition(pinned, corev1.PodScheduled).LastTransitionTime
	if boundAt.Before(&agentReadyAt) {
		t.Errorf("pinned bound at %s, before the agent on %s was ready at %s", boundAt, node, agentReadyAt)
	}
	if pinned.Spec.NodeName != node {
		t.Fatalf("pinned on %s, want %s", pinned.Spec.NodeName, node)
	}

	// The newly scheduled server is isolated like the others.
	if err := waitForCond(30*time.Second, "pinned to admit only the allowed client", func() error {
		if !e.connectsTo("allowed-1", pinned, probe.TCP, 80) {
			return fmt.Errorf("allowed-1 cannot reach pinned")
		}
		if e.connectsTo("denied-1", pinned, probe.TCP, 80) {
			return fmt.Errorf("denied-1 reaches pinned")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	e.finishTraffic(t, figures, pr)
	// Measured, not asserted: a pod is open to every client until its
	// node's agent has programmed its address (the rules key on the
	// addresses of the pods the agent knows; one it does not know yet is
	// not isolated). That window is the agent's sync after the pod got its
	// address, on every node, not a consequence of the startup taint.
	c := newPod.Finish()
	msg := fmt.Sprintf("new server pinned, denied-1 probing it from its first address on: %d probes, %d forbidden successes", c.Probes, c.ForbiddenSuccesses)
	if c.ForbiddenSuccesses > 0 {
		msg += fmt.Sprintf(", the last %s after its address appeared", c.LastWrong.Sub(addressSeen).Round(10*time.Millisecond))
	}
	t.Log(msg)
}

// probeNewServer probes a server pod from a client the policy denies, from
// the moment the pod has an address, four connections at a time.
func (e *rrEnv) probeNewServer(t *testing.T, client string, server *corev1.Pod) *localcluster.Prober {
	pair := localcluster.ProbePair{
		Name:  fmt.Sprintf("%s -> %s TCP/80", client, server.Name),
		Probe: func() bool { return e.connectsTo(client, server, probe.TCP, 80) },
	}
	pr := localcluster.StartProber([]localcluster.ProbePair{pair, pair, pair, pair}, probeInterval)
	t.Cleanup(func() { pr.Finish() })
	return pr
}

func (e *rrEnv) taints(ctx context.Context, node string) ([]corev1.Taint, error) {
	n, err := e.c.Clientset.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return n.Spec.Taints, nil
}

func (e *rrEnv) hasStartupTaint(ctx context.Context, node string) (bool, error) {
	taints, err := e.taints(ctx, node)
	return slices.ContainsFunc(taints, func(t corev1.Taint) bool { return t.Key == v1alpha1.TaintAgentNotReady }), err
}

// setStartupTaint adds the startup taint to node, as the kubelet does when
// it registers the node.
func (e *rrEnv) setStartupTaint(ctx context.Context, node string) error {
	n, err := e.c.Clientset.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: v1alpha1.TaintAgentNotReady, Effect: corev1.TaintEffectNoSchedule})
	_, err = e.c.Clientset.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	return err
}
