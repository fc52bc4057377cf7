package audit

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func TestCompiledAsAudit(t *testing.T) {
	intent := func(mode v1alpha1.IntentMode, deleting bool) *v1alpha1.ServiceIntent {
		si := &v1alpha1.ServiceIntent{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "a"}, Spec: v1alpha1.ServiceIntentSpec{Mode: mode}}
		if deleting {
			si.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
		}
		return si
	}
	with := map[string]bool{"shop/a": true}
	cases := []struct {
		name string
		si   *v1alpha1.ServiceIntent
		have map[string]bool
		want bool
	}{
		{"audit", intent(v1alpha1.ModeAudit, false), nil, true},
		{"audit, stale policies still cached", intent(v1alpha1.ModeAudit, false), with, true},
		{"enforce, policies cached", intent(v1alpha1.ModeEnforce, false), with, false},
		{"enforce, policies not cached yet (the switch from audit)", intent(v1alpha1.ModeEnforce, false), nil, true},
		{"mode defaulted to enforce", intent("", false), with, false},
		{"being deleted", intent(v1alpha1.ModeAudit, true), nil, false},
	}
	for _, c := range cases {
		if got := compiledAsAudit(c.si, c.have); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
