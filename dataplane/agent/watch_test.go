package agent

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func TestSpecChangedIgnoresStatusWrites(t *testing.T) {
	a := &v1alpha1.ServiceIntent{ObjectMeta: metav1.ObjectMeta{Generation: 3, ResourceVersion: "1"}}
	b := a.DeepCopy()
	b.ResourceVersion = "2"
	b.Status.ObservedGeneration = 3
	if specChanged(a, b) {
		t.Error("a status write triggers a sync")
	}
	b.Generation = 4
	if !specChanged(a, b) {
		t.Error("a new generation does not")
	}
	if !specChanged(&networkingv1.NetworkPolicy{}, &networkingv1.NetworkPolicy{}) {
		t.Error("other kinds must always sync")
	}
}
