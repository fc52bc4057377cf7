package cachetransform_test

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/internal/cachetransform"
)

// TestPodKeepsWhatPolicyReads: the agent's Pod transform (named ports)
// keeps what policy evaluation reads and nothing of the conditions.
func TestPodKeepsWhatPolicyReads(t *testing.T) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "a", Labels: map[string]string{"app": "a"},
			Annotations: map[string]string{"big": strings.Repeat("x", 1000)}},
		Spec: corev1.PodSpec{NodeName: "n", HostNetwork: true, InitContainers: []corev1.Container{
			{Name: "sidecar", Image: "proxy", Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 15000, Protocol: corev1.ProtocolTCP}}},
		}, Containers: []corev1.Container{
			{Name: "c", Image: "img", Env: []corev1.EnvVar{{Name: "A", Value: "B"}}, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {ContainerPort: 81}}},
		}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}, Conditions: []corev1.PodCondition{{Type: "Ready"}}},
	}
	got, err := cachetransform.Pod(cachetransform.PodFields{NamedPorts: true})(p)
	if err != nil {
		t.Fatal(err)
	}
	s := got.(*corev1.Pod)
	if s.Annotations != nil || len(s.Status.Conditions) > 0 || s.Spec.Containers[0].Image != "" || len(s.Spec.Containers[0].Ports) != 1 {
		t.Errorf("not stripped: %+v", s)
	}
	if s.Labels["app"] != "a" || !s.Spec.HostNetwork || s.Spec.NodeName != "n" || s.Status.PodIPs[0].IP != "10.0.0.1" || s.Spec.Containers[0].Ports[0].Name != "http" ||
		len(s.Spec.InitContainers) != 1 || s.Spec.InitContainers[0].Ports[0].Name != "admin" || s.Spec.InitContainers[0].Image != "" {
		t.Errorf("lost a field policy reads: %+v", s)
	}
}

// TestPodKeepsReadiness: with ReadyCondition the transform keeps the
// PodReady condition's type and status and nothing else of the conditions.
func TestPodKeepsReadiness(t *testing.T) {
	p := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Message: "m"},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, Reason: "r", LastTransitionTime: metav1.Now()},
	}}}
	got, err := cachetransform.Pod(cachetransform.PodFields{ReadyCondition: true})(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if c := got.(*corev1.Pod).Status.Conditions; !reflect.DeepEqual(c, want) {
		t.Errorf("conditions %v, want %v", c, want)
	}
	if len(got.(*corev1.Pod).Spec.Containers) != 0 {
		t.Errorf("containers kept without NamedPorts: %v", got.(*corev1.Pod).Spec.Containers)
	}
}

// TestNodeKeepsTaints: the node cache keeps the taints (the node taint
// controller's input) and drops the status.
func TestNodeKeepsTaints(t *testing.T) {
	taints := []corev1.Taint{{Key: "palisade.dev/agent-not-ready", Effect: corev1.TaintEffectNoSchedule}}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"a": "b"}},
		Spec:   corev1.NodeSpec{Taints: taints, PodCIDR: "10.0.0.0/24"},
		Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"i"}}}}}
	got, err := cachetransform.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	g := got.(*corev1.Node)
	if !reflect.DeepEqual(g.Spec.Taints, taints) || g.Name != "n" || g.Labels["a"] != "b" {
		t.Errorf("node lost what the controller reads: %+v", g)
	}
	if len(g.Status.Images) != 0 || g.Spec.PodCIDR != "" {
		t.Errorf("node kept what nobody reads: %+v", g)
	}
}
