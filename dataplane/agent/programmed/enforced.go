package programmed

import (
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// intentRef is the name EnforcedRef's body builds its Ref under.
type intentRef = Ref

// EnforcedRef returns the intent of a NetworkPolicy from the labels the
// controller puts on it; false for policies that are not an intent's.
// A policy without the generation label (written by an older controller)
// reports generation 0: programmed, but at no generation the controller
// can match.
func EnforcedRef(np *networkingv1.NetworkPolicy) (intentRef, bool) {
	name, ns := np.Labels[v1alpha1.LabelIntent], np.Labels[v1alpha1.LabelIntentNamespace]
	if name == "" || ns == "" {
		return intentRef{}, false
	}
	gen, _ := strconv.ParseInt(np.Labels[v1alpha1.LabelIntentGeneration], 10, 64)
	return intentRef{Namespace: ns, Name: name, Generation: gen, Mode: v1alpha1.ModeEnforce}, true
}
