//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	palisadev1alpha1 "github.com/palisade-dev/palisade/api/v1alpha1"
)

func intentName(i int) string { return fmt.Sprintf("svc-%05d", i) }
func podName(i int) string    { return fmt.Sprintf("p%05d", i) }

func intentFor(ns string, i, n int) *palisadev1alpha1.ServiceIntent {
	sel := func(k int) *palisadev1alpha1.LabelSelector {
		return &palisadev1alpha1.LabelSelector{MatchLabels: map[string]palisadev1alpha1.LabelValue{"svc": palisadev1alpha1.LabelValue(fmt.Sprintf("s%d", k))}}
	}
	return &palisadev1alpha1.ServiceIntent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: intentName(i)},
		Spec: palisadev1alpha1.ServiceIntentSpec{
			Target:  palisadev1alpha1.Target{PodSelector: sel(i)},
			Callers: []palisadev1alpha1.Caller{{PodSelector: sel((i + 1) % n)}},
		},
	}
}

// generatedBy counts the NetworkPolicies in ns owned by intents named in names.
func generatedBy(ctx context.Context, t *testing.T, ns string, names map[string]bool) int {
	var nps networkingv1.NetworkPolicyList
	if err := cl.Client.List(ctx, &nps, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	c := 0
	for _, np := range nps.Items {
		for _, o := range np.OwnerReferences {
			if o.Kind == "ServiceIntent" && names[o.Name] {
				c++
			}
		}
	}
	return c
}

// intentStale deletes intents while the controller is down.
func intentStale(t *testing.T, r *result) {
	ctx := context.Background()
	const ns = "z"
	n := pick(100, 20)
	names := map[string]bool{}
	if err := parallel(n, 8, func(i int) error { return cl.Client.Create(ctx, intentFor(ns, i, n)) }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		names[intentFor(ns, i, n).Name] = true
	}
	for start := time.Now(); generatedBy(ctx, t, ns, names) == 0; time.Sleep(200 * time.Millisecond) {
		if time.Since(start) > 60*time.Second {
			t.Fatal("the controller generated no NetworkPolicy for the intents")
		}
	}
	ctrl := proc{cl.Process("controller", "")}
	argv, err := ctrl.cmdline()
	if err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := parallel(n, 8, func(i int) error { return cl.Client.Delete(ctx, intentFor(ns, i, n)) }); err != nil {
		t.Fatal(err)
	}
	// No kube-controller-manager runs here, so owner-reference garbage
	// collection never happens: what removes the generated policies is the
	// controller itself (finalizer) when it returns.
	if err := ctrl.Start(argv...); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	left := -1
	for time.Since(start) < 30*time.Second {
		if left = generatedBy(ctx, t, ns, names); left == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.Figures["deletedIntents"] = n
	r.Figures["controllerBackGeneratedPoliciesLeftAfter30s"] = left
	r.Figures["controllerBackToNoGeneratedPolicyMs"] = time.Since(start).Milliseconds()
	if left != 0 {
		t.Errorf("%d generated NetworkPolicies of deleted intents remain 30s after the controller returned", left)
	}
	for _, node := range []string{"node-1", "node-2"} {
		waitTableDesired(t, node, 30*time.Second)
	}
}

func TestS11Load(t *testing.T) {
	intents, podsN, churn := pick(5000, 300), pick(10000, 600), pick(5*time.Minute, 30*time.Second)
	r := &result{ID: "11", Title: "Load", Measured: fmt.Sprintf("%d ServiceIntents over %d synthetic pods (API objects on a node without agent, IPs in 10.128.0.0/14), all Ready (allReadyAfterCreationSeconds), then %s of 100 pod label changes per second, each moving a pod to another intent's target: errors in logs, RSS over time, intent change -> enforced on the node during the churn (status.enforcement.latency and wall time until the status shows it), time until every intent is Ready with the right selected-pod count (queues drained)", intents, podsN, churn)}
	record(t, r)
	ctx := context.Background()
	const ns = "load"
	if err := cl.EnsureNamespace(ctx, ns, map[string]string{"ns": ns}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeLoad(t, r, ns, intents, podsN) })
	setup := time.Now()
	if err := parallel(podsN, 8, func(i int) error {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: podName(i), Labels: map[string]string{"svc": fmt.Sprintf("s%d", i%intents), "gen": "0"}},
			Spec:       corev1.PodSpec{NodeName: "synthetic", Containers: []corev1.Container{{Name: "c", Image: "none"}}},
		}
		if err := cl.Client.Create(ctx, p); err != nil {
			return err
		}
		ip := fmt.Sprintf("10.%d.%d.%d", 128+i/65536, (i/256)%256, i%256)
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
		return cl.Client.Status().Update(ctx, p)
	}); err != nil {
		t.Fatal(err)
	}
	if err := parallel(intents, 8, func(i int) error { return cl.Client.Create(ctx, intentFor(ns, i, intents)) }); err != nil {
		t.Fatal(err)
	}
	setupTime := time.Since(setup)
	// The load is the pod churn on a controller that is up to date: wait
	// until every intent is Ready for its generation. Without this wait the
	// churn's samples measured the controller's first pass over 5,000 new
	// intents (a queue of creations, all at the default priority).
	readyStart := time.Now()
	// Each poll lists all 5,000 intents with their status through the API
	// server: polled every second, the test's own lists kept the API server
	// busy and slowed the status writes the drain measures.
	const readyPoll = 5 * time.Second
	countReady := func(want func(k int, si *palisadev1alpha1.ServiceIntent) bool) int {
		var list palisadev1alpha1.ServiceIntentList
		if err := cl.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		ready := 0
		for i := range list.Items {
			si := &list.Items[i]
			var k int
			if _, err := fmt.Sscanf(si.Name, "svc-%d", &k); err != nil || k >= intents {
				continue
			}
			if c := meta.FindStatusCondition(si.Status.Conditions, palisadev1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == si.Generation &&
				want(k, si) {
				ready++
			}
		}
		return ready
	}
	for countReady(func(int, *palisadev1alpha1.ServiceIntent) bool { return true }) < intents {
		if time.Since(readyStart) > pick(10*time.Minute, 2*time.Minute) {
			t.Fatalf("the intents were not all Ready %s after their creation", time.Since(readyStart))
		}
		time.Sleep(readyPoll)
	}
	initialReady := time.Since(readyStart)
	t.Logf("%d intents over %d pods Ready %s after their creation; the churn starts", intents, podsN, initialReady.Round(time.Second))
	procs := []proc{agent("node-1"), agent("node-2"), {cl.Process("controller", "")}}
	rss := map[string][]int{}
	sample := func() {
		for _, p := range procs {
			rss[p.Name] = append(rss[p.Name], p.rssKiB()/1024)
		}
	}
	sample()
	// CPU during the churn, of every process of the cluster: on two
	// shared cores, one process's appetite is everyone's latency.
	cpuProcs := append(slices.Clone(procs), proc{cl.Process("kube-apiserver", "")}, proc{cl.Process("etcd", "")}, proc{cl.Process("apiproxy", "")})
	cpuBefore := make([]float64, len(cpuProcs))
	for i, p := range cpuProcs {
		cpuBefore[i] = p.cpuSeconds()
	}
	pr := startProber()
	lat := startEnforcementSampler(ctx, t, pick(15*time.Second, 5*time.Second))
	// Each event moves one pod from its intent's target to the next
	// intent's: two intents' selected pods change, the rest must not be
	// disturbed. cur is each pod's target, to check the counts at the end.
	cur := make([]int, podsN)
	for i := range cur {
		cur[i] = i % intents
	}
	// The patches go out from a few goroutines: one at a time, a patch's
	// round trip (10-15 ms on this machine) held the rate under 100/s.
	jobs := make(chan [2]int, 100)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for j := range jobs {
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: podName(j[0])}}
				patch := client.RawPatch("application/merge-patch+json", []byte(fmt.Sprintf(`{"metadata":{"labels":{"svc":"s%d"}}}`, j[1])))
				if err := cl.Client.Patch(ctx, p, patch); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	events := 0
	for time.Since(start) < churn {
		<-tick.C
		i := (events * 7919) % podsN // spread the moves over the pods
		cur[i] = (cur[i] + 1) % intents
		jobs <- [2]int{i, cur[i]}
		events++
		if events%1000 == 0 {
			sample()
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	errs := int(failed.Load())
	churnTime := time.Since(start)
	churnRate := float64(events) / churnTime.Seconds()
	cpuShare := map[string]string{}
	for i, p := range cpuProcs {
		cpuShare[p.Name] = fmt.Sprintf("%.2f", (p.cpuSeconds()-cpuBefore[i])/churnTime.Seconds())
	}
	latFigs := lat.stop()
	want := make([]int32, intents)
	for _, k := range cur {
		want[k]++
	}
	// Drained: every intent Ready for its generation and counting the pods
	// its target selects after the churn.
	drainStart := time.Now()
	ready := 0
	for time.Since(drainStart) < pick(5*time.Minute, 2*time.Minute) {
		if ready = countReady(func(k int, si *palisadev1alpha1.ServiceIntent) bool { return si.Status.SelectedPods == want[k] }); ready == intents {
			break
		}
		time.Sleep(readyPoll)
	}
	drain := time.Since(drainStart)
	sample()
	figs := pr.Finish().Figures()
	figs["setupSeconds"] = int(setupTime.Seconds())
	figs["allReadyAfterCreationSeconds"] = int(initialReady.Seconds())
	figs["podEvents"], figs["podEventsPerSecond"], figs["podEventErrors"] = events, int(churnRate), errs
	figs["intentsReady"] = fmt.Sprintf("%d/%d", ready, intents)
	figs["drainAfterChurnMs"] = drain.Milliseconds()
	maps.Copy(figs, latFigs)
	figs["coresUsedDuringChurn"] = cpuShare
	for name, series := range rss {
		figs["rssMiB-"+name] = series
	}
	for _, p := range procs {
		figs["logErrors-"+p.Name] = countErrors(p.LogFile())
	}
	r.Figures = figs
	r.Notes = append(r.Notes,
		"coresUsedDuringChurn is each process's CPU time over the churn divided by its duration (the machine has 2 cores, shared by all of them and the load generator)",
		"drainAfterChurnMs is paced on purpose: a status write that changes only an intent's selected-pod count goes out at most 50 times a second across all intents (controller flag --count-updates-per-second), one write per intent however often its count moved; unpaced, those writes (two per pod move) took most of the API server and delayed every watch, and intent changes made during the churn waited 30-50 s for their node's agent",
		"loadDeletedToGoneSeconds: after the scenario every intent and pod of the load is deleted (one request each, 8 at a time); it is the time until the controller has removed each intent's NetworkPolicies and finalizer and nothing of the load is left, so that the next scenarios run on the base layout",
		"enforcementLatencyStatusMs is what the intent's status reports (programmedAt - changedAt); enforcementLatencyWallMs is the user's wait, from the apply to a status that shows the change programmed on every node; enforcementReportedWallMs is from the apply until node-1's NodeFlowReport lists the generation")
	if ready != intents {
		t.Errorf("only %d of %d intents Ready after the churn", ready, intents)
	}
	if errs > 0 {
		t.Errorf("%d pod updates failed", errs)
	}
	if latFigs["enforcementMissed"].(int) > 0 {
		t.Errorf("%d of %d intent changes during the churn were not enforced within %s", latFigs["enforcementMissed"], latFigs["enforcementSamples"], enforcementTimeout)
	}
	if figs["forbiddenSuccesses"].(int64) != 0 {
		t.Errorf("forbidden successes: %v", figs["forbiddenSuccesses"])
	}
}

// removeLoad deletes the load's intents and pods and waits until they and
// the intents' NetworkPolicies are gone, so that the scenarios after this
// one measure the base layout, not an agent that lists 10,000 leftover pods
// at each restart. Objects are deleted one by one: a deletecollection of
// thousands stops at the API server's request timeout (1 min) with part of
// them left. The time until the controller has removed every intent's
// policies and finalizer is a figure (a bulk deletion, like a namespace's).
func removeLoad(t *testing.T, r *result, ns string, intents, pods int) {
	ctx := context.Background()
	start := time.Now()
	del := func(obj client.Object, opts ...client.DeleteOption) error {
		return client.IgnoreNotFound(cl.Client.Delete(ctx, obj, opts...))
	}
	if err := parallel(intents, 8, func(i int) error {
		return del(&palisadev1alpha1.ServiceIntent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: intentName(i)}})
	}); err != nil {
		t.Errorf("delete the load's intents: %v", err)
	}
	if err := parallel(pods, 8, func(i int) error {
		return del(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: podName(i)}}, client.GracePeriodSeconds(0))
	}); err != nil {
		t.Errorf("delete the load's pods: %v", err)
	}
	left := func(list client.ObjectList) int {
		if err := cl.Client.List(ctx, list, client.InNamespace(ns), client.Limit(1)); err != nil {
			return 1 // not known to be gone
		}
		return meta.LenList(list)
	}
	for {
		n := left(&palisadev1alpha1.ServiceIntentList{}) + left(&corev1.PodList{}) + left(&networkingv1.NetworkPolicyList{})
		if n == 0 {
			if r.Figures == nil {
				r.Figures = map[string]any{}
			}
			r.Figures["loadDeletedToGoneSeconds"] = int(time.Since(start).Seconds())
			return
		}
		if time.Since(start) > 15*time.Minute {
			t.Errorf("the load's objects are still there 15m after their deletion")
			return
		}
		time.Sleep(2 * time.Second)
	}
}

func countErrors(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "\"level\":\"error\"") || strings.Contains(l, "ERROR") {
			n++
		}
	}
	return n
}
