package serviceintent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers"
	"github.com/palisade-dev/palisade/controllers/internal/controllertest"
)

// fakeAgents write one NodeFlowReport per node, every reportInterval, as the
// agents do: the flows of the window (lastSeen: now) and the intents each
// node has programmed. The test changes what a node reports with set, and
// stops a node with silence.
type fakeAgents struct {
	mu    sync.Mutex
	start time.Time
	nodes map[string]*nodeReport
}

type nodeReport struct {
	flows    []v1alpha1.FlowRecord
	intents  []v1alpha1.ProgrammedIntent
	silenced bool
}

const reportInterval = 500 * time.Millisecond

func startAgents(t *testing.T, c client.Client) *fakeAgents {
	a := &fakeAgents{start: time.Now().Truncate(time.Second), nodes: map[string]*nodeReport{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(reportInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				a.report(ctx, t, c)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func (a *fakeAgents) set(node string, flows []v1alpha1.FlowRecord, intents ...v1alpha1.ProgrammedIntent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nodes[node] = &nodeReport{flows: flows, intents: intents}
}

func (a *fakeAgents) silence(node string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nodes[node].silenced = true
}

func (a *fakeAgents) report(ctx context.Context, t *testing.T, c client.Client) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := metav1.NewTime(time.Now())
	for node, nr := range a.nodes {
		if nr.silenced {
			continue
		}
		flows := make([]v1alpha1.FlowRecord, len(nr.flows))
		for i, f := range nr.flows {
			f.FirstSeen, f.LastSeen = metav1.NewTime(a.start), now
			flows[i] = f
		}
		spec := v1alpha1.NodeFlowReportSpec{NodeName: node, WindowStart: metav1.NewTime(a.start), ReportedAt: now,
			IntervalSeconds: 1, Flows: flows, Intents: nr.intents}
		r := &v1alpha1.NodeFlowReport{}
		err := c.Get(ctx, client.ObjectKey{Name: node}, r)
		switch {
		case apierrors.IsNotFound(err):
			r = &v1alpha1.NodeFlowReport{ObjectMeta: metav1.ObjectMeta{Name: node}, Spec: spec}
			err = c.Create(ctx, r)
		case err == nil:
			r.Spec = spec
			err = c.Update(ctx, r)
		}
		if err != nil && ctx.Err() == nil && !apierrors.IsConflict(err) {
			t.Errorf("write report of %s: %v", node, err)
		}
	}
}

func endpoint(ns, name string, lbl map[string]string) v1alpha1.FlowEndpoint {
	return v1alpha1.FlowEndpoint{Namespace: ns, WorkloadKind: "Deployment", WorkloadName: name, Pod: name + "-5d8f", IP: "10.244.1.9", Labels: lbl}
}

func ingressFlow(intent string, src v1alpha1.FlowEndpoint, port int32, verdict v1alpha1.FlowVerdict, count int64) v1alpha1.FlowRecord {
	ns, name, _ := strings.Cut(intent, "/")
	return v1alpha1.FlowRecord{Source: src, Destination: endpoint(ns, name, map[string]string{"app": name}),
		Direction: v1alpha1.FlowIngress, Protocol: "TCP", Port: port, Verdict: verdict,
		Policies: []string{ns + "/palisade-" + name}, Intents: []string{intent}, Count: count}
}

func programmedIntent(ns, name string, gen int64, mode v1alpha1.IntentMode) v1alpha1.ProgrammedIntent {
	return v1alpha1.ProgrammedIntent{Namespace: ns, Name: name, Generation: gen, Mode: mode, ProgrammedAt: metav1.NewMicroTime(time.Now())}
}

// runningPod creates a pod bound to node and marks it running with an
// address, as the kubelet would.
func runningPod(t *testing.T, h *controllertest.Harness, ns, name, node, ip string, labels map[string]string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}
	h.Create(t, pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := h.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
}

// expectStatus waits until check accepts the intent's status.
func expectStatus(t *testing.T, h *controllertest.Harness, ns, name, what string, check func(*v1alpha1.ServiceIntent) error) *v1alpha1.ServiceIntent {
	t.Helper()
	var si *v1alpha1.ServiceIntent
	controllertest.Eventually(t, what, func() error {
		si = h.GetIntent(t, ns, name)
		return check(si)
	})
	return si
}

func conditionIs(si *v1alpha1.ServiceIntent, typ string, status metav1.ConditionStatus, reason, message string) error {
	c := controllertest.Condition(si, typ)
	if c == nil {
		return fmt.Errorf("no %s condition", typ)
	}
	if c.Status != status || c.Reason != reason || !strings.Contains(c.Message, message) || c.ObservedGeneration != si.Generation {
		return fmt.Errorf("%s is %s/%s %q (generation %d of %d), want %s/%s containing %q",
			typ, c.Status, c.Reason, c.Message, c.ObservedGeneration, si.Generation, status, reason, message)
	}
	return nil
}

const unusedWindow = 4 * time.Second

// TestObservedTraffic: agents' reports, written to the real API server,
// show up on the intents' status: observed and unused callers, undeclared
// callers (dropped, or audited in Audit mode), enforcement per node, the
// conditions, the warning event and the printer columns.
func TestObservedTraffic(t *testing.T) {
	h := controllertest.Start(t, func(o *controllers.Options) { o.UnusedCallerWindow = unusedWindow })
	agents := startAgents(t, h.Client)
	ns := "observed"
	h.Namespace(t, ns, false)
	h.Service(t, ns, "orders", map[string]string{"app": "orders"})
	runningPod(t, h, ns, "orders-1", "node-a", "10.244.1.10", map[string]string{"app": "orders"})
	runningPod(t, h, ns, "orders-2", "node-b", "10.244.2.10", map[string]string{"app": "orders"})
	h.Intent(t, ns, "orders", v1alpha1.ServiceIntentSpec{
		Target: v1alpha1.Target{ServiceRef: svcRef("orders")},
		Callers: []v1alpha1.Caller{
			{Name: "checkout", PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "checkout"}}, Ports: port(8080)},
			{Name: "backup", IPBlock: &v1alpha1.IPBlock{CIDR: "198.51.100.0/24"}},
		},
	})
	checkout := endpoint(ns, "checkout", map[string]string{"app": "checkout"})
	evil := endpoint("elsewhere", "evil", map[string]string{"app": "evil"})

	// Before any report: no node has programmed it.
	expectStatus(t, h, ns, "orders", "enforcement 0/2", func(si *v1alpha1.ServiceIntent) error {
		if e := si.Status.Enforcement; e == nil || e.NodesDesired != 2 || e.NodesProgrammed != 0 || e.Generation != 1 || e.ChangedAt == nil {
			return fmt.Errorf("enforcement %+v", e)
		}
		return conditionIs(si, v1alpha1.ConditionEnforced, metav1.ConditionFalse, v1alpha1.ReasonProgramming, "0/2 nodes enforce generation 1")
	})
	expectStatus(t, h, ns, "orders", "traffic conforms without reports", func(si *v1alpha1.ServiceIntent) error {
		return conditionIs(si, v1alpha1.ConditionTrafficConforms, metav1.ConditionTrue, v1alpha1.ReasonNoUndeclaredCallers, "")
	})
	if gen := h.Policies(t, ns)[ns+"/palisade-orders"].Labels[v1alpha1.LabelIntentGeneration]; gen != "1" {
		t.Errorf("generation label %q, want 1", gen)
	}

	// node-a programmed generation 1 and saw checkout (allowed) and evil
	// (dropped, twice over two flows of one workload); node-b reports
	// nothing for the intent yet.
	agents.set("node-a", []v1alpha1.FlowRecord{
		ingressFlow(ns+"/orders", checkout, 8080, v1alpha1.VerdictAllowed, 5),
		ingressFlow(ns+"/orders", evil, 8080, v1alpha1.VerdictDropped, 3),
	}, programmedIntent(ns, "orders", 1, v1alpha1.ModeEnforce))
	agents.set("node-b", []v1alpha1.FlowRecord{ingressFlow(ns+"/orders", evil, 8080, v1alpha1.VerdictDropped, 4)})

	si := expectStatus(t, h, ns, "orders", "observed and undeclared callers", func(si *v1alpha1.ServiceIntent) error {
		st := si.Status
		if len(st.Callers) != 2 || !st.Callers[0].Observed || st.Callers[0].Connections != 5 || st.Callers[0].LastSeen == nil || st.Callers[1].Observed {
			return fmt.Errorf("callers %+v", st.Callers)
		}
		if st.ObservedCallers != "1/2" || st.Denied != 7 || st.UndeclaredCallersTotal != 1 || len(st.UndeclaredCallers) != 1 {
			return fmt.Errorf("observed %q denied %d undeclared %d %+v", st.ObservedCallers, st.Denied, st.UndeclaredCallersTotal, st.UndeclaredCallers)
		}
		u := st.UndeclaredCallers[0]
		if u.Source.Namespace != "elsewhere" || u.Source.WorkloadName != "evil" || u.Port != 8080 || u.Protocol != "TCP" ||
			u.Verdict != v1alpha1.VerdictDropped || u.Count != 7 || u.LastSeen.IsZero() || u.FirstSeen.IsZero() {
			return fmt.Errorf("undeclared caller %+v", u)
		}
		if e := st.Enforcement; e.NodesDesired != 2 || e.NodesProgrammed != 1 || e.ProgrammedAt != nil {
			return fmt.Errorf("enforcement %+v", e)
		}
		return conditionIs(si, v1alpha1.ConditionEnforced, metav1.ConditionFalse, v1alpha1.ReasonProgramming, "1/2 nodes enforce generation 1; waiting for node-b")
	})
	if err := conditionIs(si, v1alpha1.ConditionTrafficConforms, metav1.ConditionFalse, v1alpha1.ReasonUndeclaredCallersObserved, "elsewhere/Deployment/evil"); err != nil {
		t.Error(err)
	}
	expectEventMessage(t, h, ns, "orders", v1alpha1.EventUndeclaredCaller, "elsewhere/Deployment/evil")

	// backup never called: unused once the window has passed since the
	// intent's creation; checkout keeps calling and stays in use.
	expectStatus(t, h, ns, "orders", "unused callers", func(si *v1alpha1.ServiceIntent) error {
		if !slices.Equal(si.Status.UnusedCallers, []string{"backup"}) {
			return fmt.Errorf("unusedCallers %v, want [backup]", si.Status.UnusedCallers)
		}
		return nil
	})

	// The printer columns, as the API server renders them for kubectl.
	expectColumns(t, h, ns, map[string]string{"Observed": "1/2", "Denied": "7", "Enforced": "False"})

	// A change makes generation 2: 1/2 until node-b reports it too.
	h.UpdateIntent(t, ns, "orders", func(si *v1alpha1.ServiceIntent) { si.Spec.Callers[0].Ports = port(8081) })
	controllertest.Eventually(t, "generation label 2", func() error {
		if gen := h.Policies(t, ns)[ns+"/palisade-orders"].Labels[v1alpha1.LabelIntentGeneration]; gen != "2" {
			return fmt.Errorf("generation label %q", gen)
		}
		return nil
	})
	agents.set("node-a", nil, programmedIntent(ns, "orders", 2, v1alpha1.ModeEnforce))
	expectStatus(t, h, ns, "orders", "generation 2 on node-a only", func(si *v1alpha1.ServiceIntent) error {
		return conditionIs(si, v1alpha1.ConditionEnforced, metav1.ConditionFalse, v1alpha1.ReasonProgramming, "1/2 nodes enforce generation 2")
	})
	time.Sleep(time.Second) // a measurable latency
	agents.set("node-b", nil, programmedIntent(ns, "orders", 2, v1alpha1.ModeEnforce))
	si = expectStatus(t, h, ns, "orders", "generation 2 everywhere", func(si *v1alpha1.ServiceIntent) error {
		return conditionIs(si, v1alpha1.ConditionEnforced, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "2/2 nodes enforce generation 2")
	})
	e := si.Status.Enforcement
	if e.Generation != 2 || e.NodesProgrammed != 2 || e.ChangedAt == nil || e.ProgrammedAt == nil || e.Latency == nil ||
		e.ProgrammedAt.Before(e.ChangedAt) || e.Latency.Duration != e.ProgrammedAt.Sub(e.ChangedAt.Time) || e.Latency.Duration < time.Second {
		t.Errorf("enforcement after both nodes: %+v", e)
	}
	// The flows are gone from the reports: nothing undeclared any more.
	if err := conditionIs(si, v1alpha1.ConditionTrafficConforms, metav1.ConditionTrue, v1alpha1.ReasonNoUndeclaredCallers, ""); err != nil {
		t.Error(err)
	}

	// node-b's agent stops reporting: after three intervals its report is
	// stale, with no event to tell; the intent is rechecked in time.
	agents.silence("node-b")
	expectStatus(t, h, ns, "orders", "node-b stale", func(si *v1alpha1.ServiceIntent) error {
		return conditionIs(si, v1alpha1.ConditionEnforced, metav1.ConditionFalse, v1alpha1.ReasonProgramming, "waiting for node-b")
	})

	// Audit mode: the undeclared caller is let through and listed as Audited;
	// the nodes audit the intent, and no NetworkPolicy is written for it.
	h.Service(t, ns, "payments", map[string]string{"app": "payments"})
	runningPod(t, h, ns, "payments-1", "node-a", "10.244.1.11", map[string]string{"app": "payments"})
	h.Intent(t, ns, "payments", v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{ServiceRef: svcRef("payments")}, Mode: v1alpha1.ModeAudit,
		Callers: []v1alpha1.Caller{{Name: "checkout", PodSelector: &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{"app": "checkout"}}}}})
	agents.set("node-a", []v1alpha1.FlowRecord{
		ingressFlow(ns+"/payments", checkout, 9090, v1alpha1.VerdictAllowed, 2),
		ingressFlow(ns+"/payments", evil, 9090, v1alpha1.VerdictAudited, 6),
	}, programmedIntent(ns, "orders", 2, v1alpha1.ModeEnforce), programmedIntent(ns, "payments", 1, v1alpha1.ModeAudit))
	si = expectStatus(t, h, ns, "payments", "audited caller", func(si *v1alpha1.ServiceIntent) error {
		st := si.Status
		if len(st.UndeclaredCallers) != 1 || st.UndeclaredCallers[0].Verdict != v1alpha1.VerdictAudited || st.UndeclaredCallers[0].Count != 6 || st.Denied != 6 {
			return fmt.Errorf("undeclared %+v denied %d", st.UndeclaredCallers, st.Denied)
		}
		if st.ObservedCallers != "1/1" || st.Callers[0].Connections != 2 {
			return fmt.Errorf("observed %q callers %+v", st.ObservedCallers, st.Callers)
		}
		return conditionIs(si, v1alpha1.ConditionEnforced, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "1/1 nodes audit generation 1")
	})
	if err := conditionIs(si, v1alpha1.ConditionTrafficConforms, metav1.ConditionFalse, v1alpha1.ReasonUndeclaredCallersObserved, "9090/TCP Audited"); err != nil {
		t.Error(err)
	}
	if err := conditionIs(si, v1alpha1.ConditionPolicyApplied, metav1.ConditionTrue, v1alpha1.ReasonAuditMode, ""); err != nil {
		t.Error(err)
	}
	if p := h.Policies(t, ns)[ns+"/palisade-payments"]; p != nil {
		t.Errorf("Audit mode wrote %s", p.Name)
	}
	expectEventMessage(t, h, ns, "payments", v1alpha1.EventUndeclaredCaller, "9090/TCP Audited")
}

// expectEventMessage waits for an event of the intent with the reason and
// a message containing text.
func expectEventMessage(t *testing.T, h *controllertest.Harness, ns, intent, reason, text string) {
	t.Helper()
	controllertest.Eventually(t, "event "+reason, func() error {
		list, err := eventsOf(h, ns, intent, reason)
		if err != nil {
			return err
		}
		for _, msg := range list {
			if strings.Contains(msg, text) {
				return nil
			}
		}
		return fmt.Errorf("no %s event mentions %q: %v", reason, text, list)
	})
}

// expectColumns asks the API server for the intents as a table, as kubectl
// get -o wide does, and checks the orders row's cells.
func expectColumns(t *testing.T, h *controllertest.Harness, ns string, want map[string]string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, "printer columns", func() error {
		body, err := cs.CoreV1().RESTClient().Get().AbsPath("/apis/palisade.dev/v1alpha1/namespaces", ns, "serviceintents", "orders").
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
		if err != nil {
			return err
		}
		var table metav1.Table
		if err := json.Unmarshal(body, &table); err != nil {
			return fmt.Errorf("decode table: %w: %s", err, body)
		}
		if len(table.Rows) != 1 {
			return fmt.Errorf("%d rows", len(table.Rows))
		}
		for col, value := range want {
			i := slices.IndexFunc(table.ColumnDefinitions, func(c metav1.TableColumnDefinition) bool { return c.Name == col })
			if i < 0 {
				return fmt.Errorf("no column %s among %+v", col, table.ColumnDefinitions)
			}
			if got := fmt.Sprint(table.Rows[0].Cells[i]); got != value {
				return fmt.Errorf("column %s is %q, want %q", col, got, value)
			}
		}
		return nil
	})
}

// eventsOf returns the notes of the intent's events with the reason.
func eventsOf(h *controllertest.Harness, ns, intent, reason string) ([]string, error) {
	var list eventsv1.EventList
	if err := h.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []string
	for _, e := range list.Items {
		if e.Reason == reason && e.Regarding.Name == intent && e.Regarding.Kind == "ServiceIntent" {
			out = append(out, e.Note)
		}
	}
	return out, nil
}
