//go:build e2e && realnodes

package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// agentPod is the agent pod bound to node, or nil; a pod being deleted
// counts only with terminating.
func (e *rrEnv) agentPod(node string, terminating bool) (*corev1.Pod, error) {
	pods, err := e.c.Clientset.CoreV1().Pods(agentNamespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/name=" + agentDaemonSet,
		FieldSelector: "spec.nodeName=" + node,
	})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if terminating || pods.Items[i].DeletionTimestamp.IsZero() {
			return &pods.Items[i], nil
		}
	}
	return nil, nil
}

// testAgentKill kills the agent container's process on node-2 with SIGKILL
// while traffic flows; the kubelet restarts the container, and the rules
// the dead agent left stay in force until the new one has synced.
func (e *rrEnv) testAgentKill(t *testing.T) {
	const node = "node-2"
	before, err := e.agentPod(node, false)
	if err != nil || before == nil {
		t.Fatalf("agent pod on %s: %v", node, err)
	}
	status := before.Status.ContainerStatuses[0]
	pid, err := e.c.ContainerPID(context.Background(), node, status)
	if err != nil {
		t.Fatal(err)
	}
	pr := e.startTraffic(t)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d (agent on %s): %v", pid, node, err)
	}
	var restarted time.Duration
	err = waitForCond(2*time.Minute, "the kubelet to restart the killed agent and the agent to be ready", func() error {
		p, err := e.agentPod(node, false)
		if err != nil || p == nil {
			return fmt.Errorf("agent pod on %s: %v", node, err)
		}
		if p.UID != before.UID {
			return fmt.Errorf("agent pod replaced (%s), want its container restarted", p.Name)
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount <= status.RestartCount || cs.ContainerID == status.ContainerID {
			return fmt.Errorf("agent container not restarted yet (restarts %d)", cs.RestartCount)
		}
		if !podReady(p) {
			return fmt.Errorf("restarted agent not ready yet")
		}
		restarted = time.Since(killed)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.finishTraffic(t, map[string]any{"killToReadyMs": restarted.Milliseconds()}, pr)
}

// The agent DaemonSet of config/agent.
const (
	agentNamespace = "palisade-system"
	agentDaemonSet = "palisade-agent"
)

// testRollingUpdate rolls the agent DaemonSet (a new pod template, as
// `kubectl rollout restart` makes) while traffic flows: each node's agent
// pod is stopped and replaced, one node at a time (maxUnavailable 1).
func (e *rrEnv) testRollingUpdate(t *testing.T) {
	ctx := context.Background()
	old := map[string]types.UID{}
	for _, n := range e.c.State.Nodes {
		p, err := e.agentPod(n.Name, false)
		if err != nil || p == nil {
			t.Fatalf("agent pod on %s: %v", n.Name, err)
		}
		old[n.Name] = p.UID
	}
	pr := e.startTraffic(t)
	started := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"palisade.dev/e2e-restarted-at":%q}}}}}`, started.Format(time.RFC3339Nano))
	ds, err := e.c.Clientset.AppsV1().DaemonSets(agentNamespace).Patch(ctx, agentDaemonSet, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rolled time.Duration
	if err := waitForCond(150*time.Second, "the agent DaemonSet's rollout to finish on every node", func() error {
		if err := e.rolledOut(ds.Generation); err != nil {
			return err
		}
		for node, uid := range old {
			p, err := e.agentPod(node, false)
			if err != nil || p == nil {
				return fmt.Errorf("agent pod on %s: %v", node, err)
			}
			if p.UID == uid {
				return fmt.Errorf("agent pod on %s not replaced yet", node)
			}
			if !podReady(p) {
				return fmt.Errorf("new agent pod on %s not ready yet", node)
			}
		}
		rolled = time.Since(started)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.finishTraffic(t, map[string]any{"rolloutMs": rolled.Milliseconds(), "nodes": len(old)}, pr)
}

// rolledOut tells whether the agent DaemonSet has rolled out generation
// gen: every scheduled pod updated and available.
func (e *rrEnv) rolledOut(gen int64) error {
	ds, err := e.c.Clientset.AppsV1().DaemonSets(agentNamespace).Get(context.Background(), agentDaemonSet, metav1.GetOptions{})
	if err != nil {
		return err
	}
	st := ds.Status
	if st.ObservedGeneration < gen || st.UpdatedNumberScheduled != st.DesiredNumberScheduled ||
		st.NumberAvailable != st.DesiredNumberScheduled || st.NumberUnavailable != 0 {
		return fmt.Errorf("generation %d observed %d: %d desired, %d updated, %d available",
			gen, st.ObservedGeneration, st.DesiredNumberScheduled, st.UpdatedNumberScheduled, st.NumberAvailable)
	}
	return nil
}
