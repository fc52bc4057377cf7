package intent

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// ZeroTrustNamespaces returns the labels of the namespaces in zero trust,
// by name: those labelled LabelZeroTrust=ZeroTrustEnforce and not being
// deleted. It takes any list of namespace objects (Namespaces or their
// metadata).
func ZeroTrustNamespaces[T any, PT interface {
	*T
	metav1.Object
}](namespaces []T) map[string]labels.Set {
	out := make(map[string]labels.Set, len(namespaces))
	for i := range namespaces {
		ns := PT(&namespaces[i])
		l := ns.GetLabels()
		if l[v1alpha1.LabelZeroTrust] == v1alpha1.ZeroTrustEnforce && ns.GetDeletionTimestamp().IsZero() {
			out[ns.GetName()] = labels.Set(l)
		}
	}
	return out
}
