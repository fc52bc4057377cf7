package controllers

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSlimPodKeepsReadiness: the cache keeps the PodReady condition (the
// taint controller's input) and nothing else of the conditions.
func TestSlimPodKeepsReadiness(t *testing.T) {
	p := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Message: "m"},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, Reason: "r", LastTransitionTime: metav1.Now()},
	}}}
	got, err := slimPod(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if c := got.(*corev1.Pod).Status.Conditions; !reflect.DeepEqual(c, want) {
		t.Errorf("conditions %v, want %v", c, want)
	}
}
