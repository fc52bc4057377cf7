package serviceintent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers"
	"github.com/palisade-dev/palisade/controllers/internal/controllertest"
)

// TestCountPacing: on the real API server, a burst of pods joining a target
// moves the intent's selected-pod count with a few paced status writes, the
// count ends right, and a spec change is written at once while a count
// write waits for its turn.
func TestCountPacing(t *testing.T) {
	// One count-only write every 5 s, no burst beyond one.
	h := controllertest.Start(t, func(o *controllers.Options) { o.CountUpdatesPerSecond = 0.2 })
	const ns = "pacing"
	h.Namespace(t, ns, false)
	web := map[string]string{"app": "web"}
	h.Intent(t, ns, "web", v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{PodSelector: &v1alpha1.LabelSelector{
		MatchLabels: map[string]v1alpha1.LabelValue{"app": "web"}}}})
	h.Pod(t, ns, "web-0", web)
	// From none to one pod changes the Ready message too: not paced.
	controllertest.Eventually(t, "selectedPods 1", func() error { return selectedPods(h, t, ns, "web", 1) })

	statusWrites := func() int {
		n := 0
		for _, w := range h.Writes.List() {
			if strings.HasPrefix(w, "patch/status ") && strings.HasSuffix(w, " "+ns+"/web") {
				n++
			}
		}
		return n
	}
	h.Writes.Reset()
	start := time.Now()
	for i := 1; i <= 8; i++ {
		h.Pod(t, ns, fmt.Sprintf("web-%d", i), web)
	}
	controllertest.Eventually(t, "selectedPods 9", func() error { return selectedPods(h, t, ns, "web", 9) })
	// One write at once, then one per 5 s turn while the pods arrive.
	if n, most := statusWrites(), 1+int(time.Since(start)/(5*time.Second))+1; n > most {
		t.Errorf("%d status writes for 8 pods joining in %s, want at most %d (paced)", n, time.Since(start).Round(time.Millisecond), most)
	}

	// A count write waits for its turn (the last one was just now); a spec
	// change meanwhile is written at once, with the count it sees.
	h.Pod(t, ns, "web-9", web)
	h.UpdateIntent(t, ns, "web", func(si *v1alpha1.ServiceIntent) { si.Spec.Mode = v1alpha1.ModeAudit })
	changed := time.Now()
	controllertest.Eventually(t, "spec change in status", func() error {
		si := h.GetIntent(t, ns, "web")
		if si.Status.ObservedGeneration != si.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", si.Status.ObservedGeneration, si.Generation)
		}
		return nil
	})
	if took := time.Since(changed); took > 3*time.Second {
		t.Errorf("the spec change reached the status after %s, want it at once, not at the next count turn", took)
	}
	controllertest.Eventually(t, "selectedPods 10", func() error { return selectedPods(h, t, ns, "web", 10) })
}
