package intent

import (
	"testing"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func TestOwnerOf(t *testing.T) {
	l := GenerationLabels("a", "shop", 12)
	o, ok := OwnerOf(l)
	if !ok || o != (Owner{Namespace: "shop", Name: "a", Generation: 12}) || !IsManaged(l) {
		t.Fatalf("OwnerOf(%v) = %+v, %v; managed %v", l, o, ok, IsManaged(l))
	}
	if o, ok := OwnerOf(map[string]string{v1alpha1.LabelIntent: "a", v1alpha1.LabelIntentNamespace: "shop"}); !ok || o.Generation != 0 {
		t.Fatalf("without a generation: %+v, %v", o, ok)
	}
	for _, l := range []map[string]string{{"app": "x"}, {v1alpha1.LabelIntent: "a"}, {v1alpha1.LabelIntentNamespace: "shop"}} {
		if _, ok := OwnerOf(l); ok {
			t.Fatalf("OwnerOf(%v) names an intent", l)
		}
	}
	if IsManaged(map[string]string{v1alpha1.LabelIntent: "a"}) {
		t.Fatal("a policy without the managed-by label counts as Palisade's")
	}
	if _, ok := GenerationLabels("a", "shop", 0)[v1alpha1.LabelIntentGeneration]; ok {
		t.Fatal("an unknown generation is labelled")
	}
}
