package report_test

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/agent/internal/agenttest"
	"github.com/palisade-dev/palisade/dataplane/agent/report"
	"github.com/palisade-dev/palisade/dataplane/flows"
)

func deniedFlow(i int) *flows.Flow {
	return &flows.Flow{Time: time.Now(), Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictDropped, Protocol: 6,
		Source:          flows.Endpoint{IP: netip.AddrFrom4([4]byte{10, 9, 0, byte(i % 4)})},
		Destination:     flows.Endpoint{IP: netip.MustParseAddr("10.1.0.1"), Namespace: "shop", Pod: "orders-0", WorkloadKind: "Pod", WorkloadName: "orders-0"},
		DestinationPort: 80, Policies: []string{"shop/palisade-orders"}, Intents: []string{"shop/orders"}}
}

// TestReportWriter writes through a real API server: under a steady stream
// of flows the report is written at most once per interval, it names its
// Node as owner, and an unchanged report is rewritten only as a heartbeat.
func TestReportWriter(t *testing.T) {
	e := agenttest.NewEnv(t)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-r"}}
	e.Create(node)
	agg := flows.NewAggregator(100, time.Hour)
	programmed := []v1alpha1.ProgrammedIntent{{Namespace: "shop", Name: "orders", Generation: 3, Mode: v1alpha1.ModeEnforce, ProgrammedAt: metav1.NewMicroTime(time.Unix(1_700_000_000, 0))}}
	const interval = 300 * time.Millisecond
	w := &report.Writer{Client: e.C, NodeName: "node-r", Interval: interval, Aggregator: agg,
		Programmed: func() []v1alpha1.ProgrammedIntent { return programmed }}

	// A stream of flows, one every millisecond, for 2 s while the writer runs.
	var sent atomic.Int64
	stop := make(chan struct{})
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			agg.Add(deniedFlow(i))
			sent.Add(1)
		}
	}()
	writes := map[string]bool{}
	done := make(chan error, 1)
	go func() { done <- w.Start(e.Ctx) }()
	var got v1alpha1.NodeFlowReport
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		if err := e.C.Get(e.Ctx, client.ObjectKey{Name: "node-r"}, &got); err == nil {
			writes[got.ResourceVersion] = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	// select picks at random among ready cases, so the sender may add a
	// flow or two after stop closes: wait for it, or the heartbeat check
	// below would see the content change.
	<-senderDone
	elapsed := time.Since(start)
	if max := int(elapsed/interval) + 1; len(writes) > max || len(writes) < 3 {
		t.Errorf("%d distinct report versions in %s with %d flows sent: want between 3 and %d (one per interval)", len(writes), elapsed, sent.Load(), max)
	}
	if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].Kind != "Node" || got.OwnerReferences[0].UID != node.UID {
		t.Errorf("owner references %+v, want the Node %s", got.OwnerReferences, node.UID)
	}
	if len(got.ManagedFields) == 0 || got.ManagedFields[0].Manager != report.FieldManager {
		t.Errorf("managed fields %+v, want manager %s", got.ManagedFields, report.FieldManager)
	}
	s := got.Spec
	if s.NodeName != "node-r" || s.IntervalSeconds != 1 || len(s.Flows) != 4 || len(s.Intents) != 1 || s.Intents[0].Generation != 3 {
		t.Fatalf("report spec %+v", s)
	}
	var total int64
	for _, f := range s.Flows {
		total += f.Count
		if f.Verdict != v1alpha1.VerdictDropped || f.Destination.Pod != "orders-0" || f.Intents[0] != "shop/orders" || f.Protocol != "TCP" || f.Port != 80 {
			t.Errorf("record %+v", f)
		}
	}
	if total < sent.Load()/2 {
		t.Errorf("the report counts %d of %d flows", total, sent.Load())
	}

	checkHeartbeats(t, e, agg, programmed)
}

// checkHeartbeats: with no more flows the content stays, so only every
// sixth interval writes; a change is written at the next interval.
func checkHeartbeats(t *testing.T, e *agenttest.Env, agg *flows.Aggregator, programmed []v1alpha1.ProgrammedIntent) {
	t.Helper()
	now := time.Now()
	w2 := &report.Writer{Client: e.C, NodeName: "node-r", Interval: time.Second, Aggregator: agg,
		Programmed: func() []v1alpha1.ProgrammedIntent { return programmed }}
	var wrote []int
	for i := range 13 {
		ok, err := w2.Tick(e.Ctx, now.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			wrote = append(wrote, i)
		}
	}
	if want := []int{0, 6, 12}; len(wrote) != len(want) || wrote[0] != 0 || wrote[1] != 6 || wrote[2] != 12 {
		t.Errorf("wrote at intervals %v, want %v (first, then heartbeats)", wrote, want)
	}
	// A change is written at the next interval.
	agg.Add(deniedFlow(7))
	if ok, err := w2.Tick(e.Ctx, now.Add(13*time.Second)); err != nil || !ok {
		t.Errorf("a new flow was not written: %v %v", ok, err)
	}
}

// TestReportWriterKick: a change of the programmed intents is written at
// once when the agent kicks the writer, not at the next interval; a kick
// with nothing new writes nothing.
func TestReportWriterKick(t *testing.T) {
	e := agenttest.NewEnv(t)
	e.Create(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-k"}})
	var gen atomic.Int64
	gen.Store(1)
	programmed := func() []v1alpha1.ProgrammedIntent {
		return []v1alpha1.ProgrammedIntent{{Namespace: "shop", Name: "orders", Generation: gen.Load(), Mode: v1alpha1.ModeEnforce, ProgrammedAt: metav1.NewMicroTime(time.Unix(1_700_000_000, 0))}}
	}
	w := &report.Writer{Client: e.C, NodeName: "node-k", Interval: time.Hour, Programmed: programmed}
	go func() { _ = w.Start(e.Ctx) }()

	reported := func(want int64) (string, error) {
		var r v1alpha1.NodeFlowReport
		if err := e.C.Get(e.Ctx, client.ObjectKey{Name: "node-k"}, &r); err != nil {
			return "", err
		}
		if len(r.Spec.Intents) != 1 || r.Spec.Intents[0].Generation != want {
			return "", fmt.Errorf("intents %+v, want generation %d", r.Spec.Intents, want)
		}
		return r.ResourceVersion, nil
	}
	waitReported := func(want int64) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second) // the interval is an hour
		for {
			rv, err := reported(want)
			if err == nil {
				return rv
			}
			if time.Now().After(deadline) {
				t.Fatalf("not reported after a kick: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	w.Kick()
	waitReported(1)
	gen.Store(2)
	w.Kick()
	rv := waitReported(2)
	// Each kick so far made one decision (the interval is an hour): wait
	// for the third, the kick without change, before looking.
	agenttest.WaitFor(t, "the second kick's decision", 5*time.Second, func() bool { return w.Decisions() >= 2 })
	w.Kick() // nothing changed
	agenttest.WaitFor(t, "the third kick's decision", 5*time.Second, func() bool { return w.Decisions() >= 3 })
	if now, err := reported(2); err != nil || now != rv {
		t.Errorf("a kick without change rewrote the report: version %s -> %s (%v)", rv, now, err)
	}
}
