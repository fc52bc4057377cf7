//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	palisadev1alpha1 "github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/localcluster"
)

// enforcementTimeout is how long a change may take to show as enforced on
// its intent's status before the sample counts as missed.
const enforcementTimeout = 60 * time.Second

// enforcementSampler changes a real intent (target x/a on node-1, caller
// x/b on a port the prober does not use) at a fixed interval while a load
// runs, and measures each change until the intent's status says it is
// programmed on every node that must enforce it: the latency the status
// reports (programmedAt - changedAt), the wall time until node-1's report
// lists the change, and the wall time the user waits for the status.
type enforcementSampler struct {
	stopc chan struct{}
	done  chan struct{}

	mu           sync.Mutex
	status, wall []time.Duration
	reported     []time.Duration
	missed       int
	errs         []string
}

func loadProbeIntent(port int) *palisadev1alpha1.ServiceIntent {
	sel := func(v string) *palisadev1alpha1.LabelSelector {
		return &palisadev1alpha1.LabelSelector{MatchLabels: map[string]palisadev1alpha1.LabelValue{"pod": palisadev1alpha1.LabelValue(v)}}
	}
	si := &palisadev1alpha1.ServiceIntent{
		Spec: palisadev1alpha1.ServiceIntentSpec{
			Target: palisadev1alpha1.Target{PodSelector: sel("a")},
			Callers: []palisadev1alpha1.Caller{{
				PodSelector: sel("b"),
				Ports:       []palisadev1alpha1.IntentPort{{Port: intstr.FromInt(port), Protocol: "TCP"}},
			}},
		},
	}
	si.Namespace, si.Name = "x", "load-probe"
	return si
}

func startEnforcementSampler(ctx context.Context, t *testing.T, every time.Duration) *enforcementSampler {
	s := &enforcementSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { _ = cl.Client.Delete(context.Background(), loadProbeIntent(0)) })
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for k := 0; ; k++ {
			s.measure(ctx, 9000+k%100)
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// measure applies one change and waits for its status.
func (s *enforcementSampler) measure(ctx context.Context, port int) {
	si := loadProbeIntent(port)
	start := time.Now()
	if err := localcluster.ApplyObject(ctx, cl.Client, si); err != nil {
		s.record(0, 0, 0, fmt.Sprintf("apply: %v", err))
		return
	}
	gen := si.Generation
	var reported time.Duration // until node-1's report lists the generation
	for time.Since(start) < enforcementTimeout {
		if reported == 0 && reportLists(ctx, "node-1", si, gen) {
			reported = time.Since(start)
		}
		var got palisadev1alpha1.ServiceIntent
		if err := cl.Client.Get(ctx, client.ObjectKeyFromObject(si), &got); err == nil {
			e := got.Status.Enforcement
			if e != nil && e.Generation == gen && e.NodesDesired > 0 && e.NodesProgrammed == e.NodesDesired && e.Latency != nil {
				s.record(e.Latency.Duration, time.Since(start), reported, "")
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.record(0, 0, 0, fmt.Sprintf("generation %d (applied %s) not enforced within %s (node-1's report listed it after %s; %s)", gen, start.UTC().Format("15:04:05"), enforcementTimeout, reported, probeState(ctx, si)))
}

// probeState says where a change that was not enforced stands: the
// intent's status and its NetworkPolicy's generation label.
func probeState(ctx context.Context, si *palisadev1alpha1.ServiceIntent) string {
	var got palisadev1alpha1.ServiceIntent
	if err := cl.Client.Get(ctx, client.ObjectKeyFromObject(si), &got); err != nil {
		return err.Error()
	}
	out := fmt.Sprintf("status observedGeneration %d", got.Status.ObservedGeneration)
	if e := got.Status.Enforcement; e != nil {
		out += fmt.Sprintf(", enforcement generation %d %d/%d", e.Generation, e.NodesProgrammed, e.NodesDesired)
	}
	var nps networkingv1.NetworkPolicyList
	if err := cl.Client.List(ctx, &nps, client.InNamespace(si.Namespace), client.MatchingLabels{palisadev1alpha1.LabelIntent: si.Name}); err == nil {
		for _, np := range nps.Items {
			out += fmt.Sprintf(", policy %s at generation %s", np.Name, np.Labels[palisadev1alpha1.LabelIntentGeneration])
		}
	}
	return out
}

// reportLists tells whether the node's NodeFlowReport lists the intent at
// generation gen or later.
func reportLists(ctx context.Context, node string, si *palisadev1alpha1.ServiceIntent, gen int64) bool {
	var r palisadev1alpha1.NodeFlowReport
	if err := cl.Client.Get(ctx, client.ObjectKey{Name: node}, &r); err != nil {
		return false
	}
	for _, p := range r.Spec.Intents {
		if p.Namespace == si.Namespace && p.Name == si.Name && p.Generation >= gen {
			return true
		}
	}
	return false
}

func (s *enforcementSampler) record(status, wall, reported time.Duration, miss string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if miss != "" {
		s.missed++
		s.errs = append(s.errs, miss)
		return
	}
	s.status = append(s.status, status)
	s.wall = append(s.wall, wall)
	if reported > 0 {
		s.reported = append(s.reported, reported)
	}
}

// stop ends the sampling (after the change in flight) and returns the
// figures.
func (s *enforcementSampler) stop() map[string]any {
	close(s.stopc)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	figs := map[string]any{
		"enforcementSamples": len(s.status) + s.missed,
		"enforcementMissed":  s.missed,
	}
	if len(s.errs) > 0 {
		figs["enforcementMisses"] = s.errs
	}
	if len(s.status) > 0 {
		figs["enforcementLatencyStatusMs"] = quantiles(s.status)
		figs["enforcementLatencyWallMs"] = quantiles(s.wall)
	}
	if len(s.reported) > 0 {
		figs["enforcementReportedWallMs"] = quantiles(s.reported)
	}
	return figs
}

// quantiles renders p50/p90/max in milliseconds.
func quantiles(ds []time.Duration) string {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) int64 { return ds[int(q*float64(len(ds)-1))].Milliseconds() }
	return fmt.Sprintf("p50 %d, p90 %d, max %d", at(0.5), at(0.9), ds[len(ds)-1].Milliseconds())
}
