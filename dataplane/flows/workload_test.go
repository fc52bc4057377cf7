package flows

import (
	"fmt"
	"maps"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func owner(kind, name string, controller bool) metav1.OwnerReference {
	return metav1.OwnerReference{Kind: kind, Name: name, Controller: ptr.To(controller)}
}

func TestWorkload(t *testing.T) {
	cases := []struct {
		name     string
		labels   map[string]string
		owners   []metav1.OwnerReference
		wantKind string
		wantName string
	}{
		{"bare pod", nil, nil, KindPod, "p"},
		{"deployment's replicaset", map[string]string{"pod-template-hash": "7d9f8c6b5"},
			[]metav1.OwnerReference{owner("ReplicaSet", "web-7d9f8c6b5", true)}, KindDeployment, "web"},
		{"deployment with a dashed name", map[string]string{"pod-template-hash": "abc"},
			[]metav1.OwnerReference{owner("ReplicaSet", "my-api-v2-abc", true)}, KindDeployment, "my-api-v2"},
		{"bare replicaset (no hash label)", nil,
			[]metav1.OwnerReference{owner("ReplicaSet", "web-7d9f8c6b5", true)}, KindReplicaSet, "web-7d9f8c6b5"},
		{"hash label that is not the name's suffix", map[string]string{"pod-template-hash": "zzz"},
			[]metav1.OwnerReference{owner("ReplicaSet", "web-abc", true)}, KindReplicaSet, "web-abc"},
		{"statefulset", nil, []metav1.OwnerReference{owner("StatefulSet", "db", true)}, KindStatefulSet, "db"},
		{"daemonset", nil, []metav1.OwnerReference{owner("DaemonSet", "fluent", true)}, KindDaemonSet, "fluent"},
		{"job", nil, []metav1.OwnerReference{owner("Job", "backup-2903", true)}, KindJob, "backup-2903"},
		{"unknown controller kind", nil, []metav1.OwnerReference{owner("Rollout", "r", true)}, KindPod, "p"},
		{"controller among owners", nil, []metav1.OwnerReference{owner("ConfigMap", "c", false), owner("StatefulSet", "db", true)}, KindStatefulSet, "db"},
		{"two owners, none controller", nil, []metav1.OwnerReference{owner("StatefulSet", "a", false), owner("StatefulSet", "b", false)}, KindPod, "p"},
		{"single owner without controller flag", nil, []metav1.OwnerReference{{Kind: "DaemonSet", Name: "d"}}, KindDaemonSet, "d"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kind, name := Workload("p", c.labels, c.owners)
			if kind != c.wantKind || name != c.wantName {
				t.Errorf("got %s/%s, want %s/%s", kind, name, c.wantKind, c.wantName)
			}
		})
	}
}

func TestIdentityLabels(t *testing.T) {
	in := map[string]string{
		"app": "web", "tier": "front",
		"pod-template-hash": "h", "controller-revision-hash": "r",
		"statefulset.kubernetes.io/pod-name": "db-0", "apps.kubernetes.io/pod-index": "0",
		"batch.kubernetes.io/controller-uid": "u", "controller-uid": "u",
		"batch.kubernetes.io/job-name": "j", "job-name": "j", "batch.kubernetes.io/job-completion-index": "3",
	}
	got := IdentityLabels(in)
	if want := map[string]string{"app": "web", "tier": "front"}; !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if IdentityLabels(map[string]string{"pod-template-hash": "h"}) != nil {
		t.Error("only per-pod labels: want nil")
	}
	many := map[string]string{}
	for i := range 40 {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	got = IdentityLabels(many)
	if len(got) != MaxIdentityLabels {
		t.Fatalf("kept %d labels, want %d", len(got), MaxIdentityLabels)
	}
	for i := range MaxIdentityLabels {
		if _, ok := got[fmt.Sprintf("k%02d", i)]; !ok {
			t.Errorf("want the first keys in order, k%02d missing", i)
		}
	}
}
