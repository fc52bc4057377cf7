package programmed

import (
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/intent"
)

// EnforcedRef returns the intent of a NetworkPolicy from the labels the
// controller puts on it; false for policies that are not an intent's.
// A policy without the generation label (written by an older controller)
// reports generation 0: programmed, but at no generation the controller
// can match.
func EnforcedRef(np *networkingv1.NetworkPolicy) (Ref, bool) {
	o, ok := intent.OwnerOf(np.Labels)
	if !ok {
		return Ref{}, false
	}
	return Ref{Namespace: o.Namespace, Name: o.Name, Generation: o.Generation, Mode: v1alpha1.ModeEnforce}, true
}
