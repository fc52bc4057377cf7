package nodetaint

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func TestWithoutAgentNotReadyTaint(t *testing.T) {
	startup := corev1.Taint{Key: v1alpha1.TaintAgentNotReady, Effect: corev1.TaintEffectNoSchedule}
	other := corev1.Taint{Key: "example.com/gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	evict := corev1.Taint{Key: "example.com/maintenance", Effect: corev1.TaintEffectNoExecute}
	node := func(taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Taints: taints}}
	}
	pod := func(nodeName string, ready corev1.ConditionStatus, mods ...func(*corev1.Pod)) corev1.Pod {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "agent-" + nodeName, Namespace: "palisade-system", Labels: map[string]string{agentLabel: agentName}},
			Spec:       corev1.PodSpec{NodeName: nodeName},
		}
		if ready != "" {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: ready}}
		}
		for _, m := range mods {
			m(&p)
		}
		return p
	}
	deleting := func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }
	notAgent := func(p *corev1.Pod) { p.Labels = map[string]string{agentLabel: "something-else"} }
	cases := []struct {
		name   string
		node   *corev1.Node
		pods   []corev1.Pod
		want   []corev1.Taint
		remove bool
	}{
		{"no taint, ready agent: no write", node(other), []corev1.Pod{pod("n1", corev1.ConditionTrue)}, nil, false},
		{"no taints at all", node(), []corev1.Pod{pod("n1", corev1.ConditionTrue)}, nil, false},
		{"tainted, no agent pod yet", node(startup), nil, nil, false},
		{"tainted, agent without conditions", node(startup), []corev1.Pod{pod("n1", "")}, nil, false},
		{"tainted, agent not ready", node(startup), []corev1.Pod{pod("n1", corev1.ConditionFalse)}, nil, false},
		{"tainted, readiness unknown", node(startup), []corev1.Pod{pod("n1", corev1.ConditionUnknown)}, nil, false},
		{"tainted, ready agent on another node", node(startup), []corev1.Pod{pod("n2", corev1.ConditionTrue)}, nil, false},
		{"tainted, ready pod that is not the agent", node(startup), []corev1.Pod{pod("n1", corev1.ConditionTrue, notAgent)}, nil, false},
		{"tainted, ready agent being deleted", node(startup), []corev1.Pod{pod("n1", corev1.ConditionTrue, deleting)}, nil, false},
		{"tainted, ready agent: only taint removed", node(startup), []corev1.Pod{pod("n1", corev1.ConditionTrue)}, nil, true},
		{"others kept in order", node(other, startup, evict), []corev1.Pod{pod("n1", corev1.ConditionTrue)}, []corev1.Taint{other, evict}, true},
		{"old agent deleting, new one ready", node(startup, other), []corev1.Pod{pod("n1", corev1.ConditionTrue, deleting), pod("n1", corev1.ConditionTrue)}, []corev1.Taint{other}, true},
		{"any value and effect of the key", node(corev1.Taint{Key: v1alpha1.TaintAgentNotReady, Value: "x", Effect: corev1.TaintEffectNoExecute}), []corev1.Pod{pod("n1", corev1.ConditionTrue)}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.node.DeepCopy()
			got, remove := withoutAgentNotReadyTaint(c.node, c.pods)
			if remove != c.remove || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, %v; want %v, %v", got, remove, c.want, c.remove)
			}
			if !reflect.DeepEqual(before, c.node) {
				t.Errorf("the node was modified: %v", c.node.Spec.Taints)
			}
		})
	}
}
