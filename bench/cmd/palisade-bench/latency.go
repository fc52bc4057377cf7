package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/bench/internal/netenv"
	"github.com/palisade-dev/palisade/bench/stats"
	"github.com/palisade-dev/palisade/internal/localcluster"
	"github.com/palisade-dev/palisade/internal/netns"
)

// Measurement 1: intent → enforced latency on the local cluster. A client
// pod on node-2 probes a server pod on node-1 every millisecond; each timed
// change flips whether it may connect, and the latency runs from the API
// write until the probe sees the flip.

const (
	latencyNS   = "bench"
	latencyPort = 8080
	// probeTimeoutMs bounds one probe: a connection the rules drop shows up
	// as a probe that has not connected after this long.
	probeTimeoutMs = 1
	// denyConfirm consecutive failed probes make a denial (a slow handshake
	// can fail one 1 ms probe); a single success proves an allow.
	denyConfirm = 3
	// changeSpacing separates timed changes, so that the follow-up writes
	// of one (status, finalizer, the agent's coalesced sync) are over before
	// the next starts and each sample stands alone.
	changeSpacing = 300 * time.Millisecond
)

// Kinds of timed change, in the order one cycle makes them.
const (
	kindCreated    = "intent created"
	kindUpdated    = "intent updated (caller swapped)"
	kindPodRemoved = "caller pod removed"
	kindPodAdded   = "caller pod added"
	kindDeleted    = "intent deleted"
)

// prober probes dst from a pod namespace in a loop and keeps the confirmed
// outcome and the start time of the first probe that saw it.
type prober struct {
	mu      sync.Mutex
	known   bool
	allowed bool
	since   time.Time
	// failures in a row while allowed, and when the first of them started.
	fails     int
	failSince time.Time
	probes    int
	stopc     chan struct{}
	done      chan error
}

func startProber(netnsName string, dst netip.AddrPort) (*prober, error) {
	ns, err := netns.Open(netnsName)
	if err != nil {
		return nil, err
	}
	p := &prober{stopc: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		defer func() { _ = ns.Close() }()
		p.done <- ns.Do(func() error {
			for {
				select {
				case <-p.stopc:
					return nil
				default:
				}
				t := time.Now()
				ok, err := netenv.TCPConnect(dst, probeTimeoutMs)
				if err != nil {
					return err
				}
				p.record(ok, t)
				if d := time.Until(t.Add(time.Millisecond)); d > 0 {
					time.Sleep(d)
				}
			}
		})
	}()
	return p, nil
}

func (p *prober) record(ok bool, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probes++
	switch {
	case !p.known:
		p.known, p.allowed, p.since = true, ok, t
	case ok:
		p.fails = 0
		if !p.allowed {
			p.allowed, p.since = true, t
		}
	case p.allowed:
		if p.fails == 0 {
			p.failSince = t
		}
		p.fails++
		if p.fails >= denyConfirm {
			p.allowed, p.since, p.fails = false, p.failSince, 0
		}
	}
}

func (p *prober) state() (known, allowed bool, since time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.known, p.allowed, p.since
}

func (p *prober) stop() error {
	close(p.stopc)
	return <-p.done
}

// waitFor waits until the confirmed outcome is want, seen by a probe that
// started after t0, and returns that probe's start.
func (p *prober) waitFor(ctx context.Context, want bool, t0 time.Time, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		known, allowed, since := p.state()
		if known && allowed == want && !since.Before(t0) {
			return since, nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			return time.Time{}, fmt.Errorf("prober stopped: %v", err)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(500 * time.Microsecond):
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("probe did not flip to allowed=%v within %s", want, timeout)
		}
	}
}

// latencyIntent protects the server and admits the pods labelled
// app=<caller>.
func latencyIntent(caller string) *v1alpha1.ServiceIntent {
	return &v1alpha1.ServiceIntent{
		ObjectMeta: metav1.ObjectMeta{Namespace: latencyNS, Name: "latency"},
		Spec: v1alpha1.ServiceIntentSpec{
			Target: v1alpha1.Target{PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "server"}}},
			Callers: []v1alpha1.Caller{{Name: "caller",
				PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": v1alpha1.LabelValue(caller)}},
				Ports:       []v1alpha1.IntentPort{{Port: intstr.FromInt32(latencyPort), Protocol: "TCP"}}}},
		},
	}
}

// measureLatency is measurement 1.
func measureLatency(ctx context.Context, cfg *config, res *Results) error {
	changes := 200
	if cfg.quick {
		changes = 30
	}
	start := time.Now()
	c, err := upCluster(ctx, cfg, "cluster-latency", localcluster.Config{Nodes: 2, Backend: "nftables", NoController: true})
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Down(); err != nil {
			cfg.logf("M1: tear the cluster down: %v", err)
		}
	}()
	ctl := &controller{cfg: cfg, c: c}
	if err := ctl.start(); err != nil {
		return err
	}
	defer ctl.stop()
	port := []corev1.ContainerPort{{Name: "http", ContainerPort: latencyPort, Protocol: corev1.ProtocolTCP}}
	server, err := c.CreatePod(ctx, localcluster.PodSpec{Namespace: latencyNS, Name: "server", Node: "node-1", Labels: map[string]string{"app": "server"}, Ports: port})
	if err != nil {
		return err
	}
	clientPod, err := c.CreatePod(ctx, localcluster.PodSpec{Namespace: latencyNS, Name: "client", Node: "node-2", Labels: map[string]string{"app": "client"}, Ports: port})
	if err != nil {
		return err
	}
	cfg.logf("M1: cluster with 2 nodes, controller and pods up in %s", time.Since(start).Round(100*time.Millisecond))

	// The client pod's object, to remove and add again (its namespace and
	// address stay: a pod restarting with the same address).
	var saved corev1.Pod
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: latencyNS, Name: "client"}, &saved); err != nil {
		return err
	}
	pr, err := startProber(clientPod.Netns, netip.AddrPortFrom(server.IP, latencyPort))
	if err != nil {
		return err
	}
	defer func() { _ = pr.stop() }()
	if _, err := pr.waitFor(ctx, true, time.Time{}, 30*time.Second); err != nil {
		return fmt.Errorf("open network: %w", err)
	}

	cl := c.Client
	patchCaller := func(ctx context.Context, caller string) error {
		b, _ := json.Marshal(map[string]any{"spec": map[string]any{"callers": latencyIntent(caller).Spec.Callers}})
		return cl.Patch(ctx, &v1alpha1.ServiceIntent{ObjectMeta: metav1.ObjectMeta{Namespace: latencyNS, Name: "latency"}}, client.RawPatch(types.MergePatchType, b))
	}
	type step struct {
		kind  string
		allow bool // outcome after the change
		do    func(ctx context.Context) error
	}
	cycle := []step{
		{kindCreated, false, func(ctx context.Context) error { return cl.Create(ctx, latencyIntent("other")) }},
		{kindUpdated, true, func(ctx context.Context) error { return patchCaller(ctx, "client") }},
		{kindPodRemoved, false, func(ctx context.Context) error {
			return cl.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: latencyNS, Name: "client"}}, client.GracePeriodSeconds(0))
		}},
		{kindPodAdded, true, func(ctx context.Context) error { return recreatePod(ctx, cl, &saved) }},
		{kindUpdated, false, func(ctx context.Context) error { return patchCaller(ctx, "other") }},
		{kindDeleted, true, func(ctx context.Context) error {
			return cl.Delete(ctx, &v1alpha1.ServiceIntent{ObjectMeta: metav1.ObjectMeta{Namespace: latencyNS, Name: "latency"}})
		}},
	}
	byKind := map[string][]float64{}
	var all []float64
	type sample struct {
		n    int
		kind string
		ms   float64
	}
	var samples []sample
	var failures []string
	for i := 0; i < changes; i++ {
		s := cycle[i%len(cycle)]
		// Let the previous change's follow-up writes (status, finalizer)
		// settle so that each sample stands alone.
		time.Sleep(changeSpacing)
		if s.kind == kindPodAdded {
			// The removed pod's object must be gone before it is added again.
			if err := poll(ctx, 10*time.Millisecond, 10*time.Second, "the client pod to be deleted", func() (bool, error) {
				err := cl.Get(ctx, client.ObjectKey{Namespace: latencyNS, Name: "client"}, &corev1.Pod{})
				return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
			}); err != nil {
				return err
			}
		}
		if s.kind == kindCreated {
			// An intent being deleted keeps its name until its finalizer goes.
			if err := poll(ctx, 10*time.Millisecond, 10*time.Second, "the intent to be deleted", func() (bool, error) {
				err := cl.Get(ctx, client.ObjectKey{Namespace: latencyNS, Name: "latency"}, &v1alpha1.ServiceIntent{})
				return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
			}); err != nil {
				return err
			}
		}
		t0 := time.Now()
		if err := s.do(ctx); err != nil {
			return fmt.Errorf("change %d (%s): %w", i+1, s.kind, err)
		}
		flip, err := pr.waitFor(ctx, s.allow, t0, 15*time.Second)
		if err != nil {
			failures = append(failures, fmt.Sprintf("change %d (%s): %v", i+1, s.kind, err))
			if _, err := pr.waitFor(ctx, s.allow, t0, 45*time.Second); err != nil {
				return fmt.Errorf("change %d (%s) never took effect: %w", i+1, s.kind, err)
			}
			continue
		}
		d := ms(flip.Sub(t0))
		byKind[s.kind] = append(byKind[s.kind], d)
		all = append(all, d)
		samples = append(samples, sample{i + 1, s.kind, d})
	}
	pr.mu.Lock()
	probes := pr.probes
	pr.mu.Unlock()
	cfg.logf("M1: %d changes timed, %d probes", len(all), probes)
	setup := fmt.Sprintf("local cluster, 2 nodes, nftables agents, controller; client pod on node-2 → server pod on node-1, TCP connect probe every 1 ms (%d ms timeout, denial confirmed by %d failures in a row); %d changes in cycles of created → updated (allow) → caller pod removed → caller pod added → updated (deny) → deleted, %s apart",
		probeTimeoutMs, denyConfirm, changes, changeSpacing)
	overall := &Metric{ID: "M1", Name: "Intent → enforced latency, all changes", Setup: setup, Unit: "ms", Stat: "p99", Tail: true,
		Summary: stats.Summarize(all), Target: "p99 ≤ 150 ms", TargetValue: 150}
	if len(failures) > 0 {
		overall.Note = fmt.Sprintf("%d changes exceeded 15 s (left out of the figures): %s", len(failures), strings.Join(failures, "; "))
	}
	if overall.Summary.P99 > 150 || overall.Summary.Median > 50 {
		slices.SortFunc(samples, func(a, b sample) int { return int(b.ms*1000 - a.ms*1000) })
		var slow []string
		for _, s := range samples[:min(5, len(samples))] {
			slow = append(slow, fmt.Sprintf("#%d %s %.0f ms", s.n, s.kind, s.ms))
		}
		overall.Note = strings.TrimSpace(overall.Note + " " + latencyExplanation + " Slowest changes: " + strings.Join(slow, ", ") + ".")
	}
	res.add(overall)
	for i, kind := range []string{kindCreated, kindUpdated, kindDeleted, kindPodAdded, kindPodRemoved} {
		m := &Metric{ID: fmt.Sprintf("M1%c", 'a'+i), Name: "Intent → enforced latency: " + kind, Setup: "as M1", Unit: "ms", Stat: "p99", Tail: true,
			Summary: stats.Summarize(byKind[kind]), Target: "p99 ≤ 150 ms", TargetValue: 150}
		if m.Summary.N > 0 && m.Summary.P99 > 150 {
			m.Note = "See M1."
		}
		res.add(m)
	}
	return nil
}

// latencyExplanation is why the figures sit near 100 ms (the anchors'
// goal is p50 ≤ 50 ms): read off the distribution, whose p10-p90 band of
// every kind lies at 100-130 ms.
const latencyExplanation = "Every kind of change takes about 100 ms plus one sync, including the agent-only ones (caller pod added/removed): " +
	"the agent's sync loop (dataplane/agent/agent.go, MinInterval 100 ms) syncs at once on an event, then holds the next sync until 100 ms (or twice the previous sync's duration, when longer) after the previous one started, " +
	"and each change reaches the agent as two events a few ms apart, of which only the second changes the rules: a pod is created, then given its address (status); " +
	"a pod deletion first sets deletionTimestamp, then removes the object; an Enforce intent is seen first as itself (the agent compiles only Audit intents), then as the controller's NetworkPolicy. " +
	"A trailing debounce of a few ms (or ignoring events that change nothing the agent programs) would remove the 100 ms."

// recreatePod creates a pod object again from a saved copy, with the status
// it had (the kubelet's part): address, Running, Ready.
func recreatePod(ctx context.Context, cl client.Client, saved *corev1.Pod) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: saved.Namespace, Name: saved.Name, Labels: saved.Labels, Annotations: saved.Annotations},
		Spec:       *saved.Spec.DeepCopy(),
	}
	if err := cl.Create(ctx, pod); err != nil {
		return err
	}
	pod.Status = *saved.Status.DeepCopy()
	return cl.Status().Update(ctx, pod)
}
