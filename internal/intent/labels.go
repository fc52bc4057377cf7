package intent

import (
	"strconv"

	"k8s.io/apimachinery/pkg/types"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// ManagedLabels are the labels of every object Palisade generates.
func ManagedLabels() map[string]string {
	return map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}
}

// Labels are the labels of every object generated for the intent: they
// select its objects of any generation.
func Labels(name, namespace string) map[string]string {
	l := ManagedLabels()
	l[v1alpha1.LabelIntent] = name
	l[v1alpha1.LabelIntentNamespace] = namespace
	return l
}

// GenerationLabels are Labels plus the intent generation the object was
// compiled from (when known, i.e. positive), which agents report back as
// programmed.
func GenerationLabels(name, namespace string, generation int64) map[string]string {
	l := Labels(name, namespace)
	if generation > 0 {
		l[v1alpha1.LabelIntentGeneration] = strconv.FormatInt(generation, 10)
	}
	return l
}

// IsManaged reports whether the labels mark an object Palisade generated.
func IsManaged(labels map[string]string) bool {
	return labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue
}

// Owner is the intent a generated object was compiled from.
type Owner struct {
	Namespace, Name string
	// Generation is the intent generation the object was compiled from;
	// zero when the object does not say.
	Generation int64
}

// Key is the owning intent's namespace/name.
func (o Owner) Key() types.NamespacedName {
	return types.NamespacedName{Namespace: o.Namespace, Name: o.Name}
}

// OwnerOf reads an object's owning intent from its labels; false when they
// do not name one. An unparsable generation reads as zero (unknown). It
// does not check LabelManagedBy: see IsManaged.
func OwnerOf(labels map[string]string) (Owner, bool) {
	o := Owner{Namespace: labels[v1alpha1.LabelIntentNamespace], Name: labels[v1alpha1.LabelIntent]}
	if o.Namespace == "" || o.Name == "" {
		return Owner{}, false
	}
	o.Generation, _ = strconv.ParseInt(labels[v1alpha1.LabelIntentGeneration], 10, 64)
	return o, true
}
