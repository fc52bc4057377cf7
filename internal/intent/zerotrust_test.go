package intent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func TestZeroTrustNamespaces(t *testing.T) {
	now := metav1.Now()
	enforce := map[string]string{v1alpha1.LabelZeroTrust: v1alpha1.ZeroTrustEnforce, "team": "a"}
	nss := []corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: enforce}},
		{ObjectMeta: metav1.ObjectMeta{Name: "open", Labels: map[string]string{v1alpha1.LabelZeroTrust: "off"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "going", Labels: enforce, DeletionTimestamp: &now}},
	}
	got := ZeroTrustNamespaces(nss)
	if len(got) != 1 || got["shop"]["team"] != "a" {
		t.Fatalf("ZeroTrustNamespaces = %v, want only shop with its labels", got)
	}
	meta := []metav1.PartialObjectMetadata{{ObjectMeta: nss[0].ObjectMeta}}
	if got := ZeroTrustNamespaces(meta); len(got) != 1 {
		t.Fatalf("from metadata: %v", got)
	}
}
