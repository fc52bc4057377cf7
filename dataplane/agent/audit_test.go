package agent_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/agent"
	"github.com/palisade-dev/palisade/dataplane/agent/flowobserver"
	"github.com/palisade-dev/palisade/dataplane/agent/internal/agenttest"
	"github.com/palisade-dev/palisade/dataplane/flowlog"
	"github.com/palisade-dev/palisade/dataplane/flows"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
	"github.com/palisade-dev/palisade/internal/intent/resolve"
	"github.com/palisade-dev/palisade/internal/policy"
)

// stateRecorder is an EventSource that only records the states it is given.
type stateRecorder struct{ updates chan *policy.State }

func (s *stateRecorder) Update(st *policy.State) {
	select {
	case s.updates <- st:
	default:
	}
}

func (s *stateRecorder) Run(ctx context.Context, _ func(flowlog.Event)) error {
	<-ctx.Done()
	return nil
}

// TestAuditIntentBecomesAuditPolicies runs the agent against a real API
// server: an Audit-mode intent is resolved (Service target, Deployment
// caller) and compiled by the agent into audit policies of the synced
// state; switched to Enforce it stays audited until the controller's
// NetworkPolicies reach the cache, and from the sync that sees them on it
// is enforced: no state in between has neither. Generation tracking and
// flow attribution follow.
func TestAuditIntentBecomesAuditPolicies(t *testing.T) {
	e := agenttest.NewEnv(t)
	si := createAuditedShop(t, e)

	rec := &agenttest.RecordingBackend{}
	src := &stateRecorder{updates: make(chan *policy.State, 100)}
	agg := flows.NewAggregator(100, time.Hour)
	// Each change of what is programmed (intent, generation, mode) kicks the
	// report writer; syncs that change nothing of it do not.
	var kicks atomic.Int64
	a, err := agent.New(agent.Config{NodeName: "node-a", MinInterval: 20 * time.Millisecond}, e.StartCache(), rec)
	if err != nil {
		t.Fatal(err)
	}
	a.Flows = &flowobserver.Observer{Events: src, Aggregator: agg}
	a.OnProgrammedChange = func() { kicks.Add(1) }
	go func() { _ = a.Start(e.Ctx) }()
	expectKicks := func(want int64) {
		t.Helper()
		agenttest.WaitFor(t, fmt.Sprintf("%d report kicks", want), 5*time.Second, func() bool { return kicks.Load() >= want })
		laterSync(t, e, a) // later syncs that change nothing must not kick
		if got := kicks.Load(); got != want {
			t.Errorf("%d report kicks, want %d", got, want)
		}
	}

	ingress := compiler.IngressPolicyName("orders")
	auditKey, enforceKey := policy.AuditKey("shop", ingress), "shop/"+ingress
	ordersIP := netip.MustParseAddr("10.1.0.1")
	// groupOf returns the keys of the ingress group holding the orders pod.
	groupOf := func(st *policy.State) []string {
		for _, g := range st.Ingress {
			if slices.Contains(g.IPs, ordersIP) {
				return g.Policies
			}
		}
		return nil
	}
	agenttest.WaitFor(t, "the audit policy in the synced state", 15*time.Second, func() bool {
		st := rec.Last()
		return st != nil && slices.Equal(groupOf(st), []string{auditKey})
	})
	checkAuditRules(t, rec.Last(), auditKey)
	if err := e.C.Get(e.Ctx, client.ObjectKeyFromObject(si), si); err != nil {
		t.Fatal(err)
	}
	checkProgrammed(t, a, si.Generation, v1alpha1.ModeAudit)
	// The first sync may have programmed nothing yet, then the audited
	// intent: one or two kicks.
	agenttest.WaitFor(t, "a report kick", 5*time.Second, func() bool { return kicks.Load() >= 1 })
	laterSync(t, e, a)
	nKicks := kicks.Load()

	// The flow log's events are attributed against the synced state.
	agenttest.WaitFor(t, "the state handed to the flow log", 5*time.Second, func() bool { return len(src.updates) > 0 })
	checkAttribution(t, a.Flows, agg, auditKey, "shop/"+ingress)

	// Switch to Enforce. No controller runs here: the agent keeps auditing.
	si.Spec.Mode = v1alpha1.ModeEnforce
	if err := e.C.Update(e.Ctx, si); err != nil {
		t.Fatal(err)
	}
	agenttest.WaitFor(t, "the new generation audited", 15*time.Second, func() bool {
		p := a.Programmed()
		return len(p) == 1 && p[0].Generation == si.Generation
	})
	if got := groupOf(rec.Last()); !slices.Equal(got, []string{auditKey}) {
		t.Fatalf("enforce intent without its policies: group %v, want still audited", got)
	}
	checkProgrammed(t, a, si.Generation, v1alpha1.ModeAudit)
	expectKicks(nKicks + 1)

	// The controller's policies arrive: they take over in the same sync.
	mark := len(rec.All())
	res, err := resolve.Resolver{Reader: e.C}.Resolve(e.Ctx, si, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Input.Generation = si.Generation
	for _, np := range compiler.Compile(res.Input) {
		e.Create(&np)
	}
	agenttest.WaitFor(t, "the enforce policy in the synced state", 15*time.Second, func() bool {
		return slices.Equal(groupOf(rec.Last()), []string{enforceKey})
	})
	for i, st := range rec.All()[mark:] {
		if g := groupOf(&st); !slices.Equal(g, []string{auditKey}) && !slices.Equal(g, []string{enforceKey}) {
			t.Errorf("sync %d after the policies were created: orders in group %v (a gap)", i, g)
		}
	}
	if slices.ContainsFunc(rec.Last().Policies, func(p policy.PolicyRules) bool { return p.Audit }) {
		t.Error("audit policy still in the state next to the enforce one")
	}
	checkProgrammed(t, a, si.Generation, v1alpha1.ModeEnforce)
	expectKicks(nKicks + 2)
}

// createAuditedShop creates the shop namespace with its orders Service
// (pod orders-0 on node-a) and web Deployment (pod web-5d8f-x on node-b),
// and the Audit-mode intent that lets web call orders.
func createAuditedShop(t *testing.T, e *agenttest.Env) *v1alpha1.ServiceIntent {
	t.Helper()
	e.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	e.Create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "orders"}, Ports: []corev1.ServicePort{{Port: 80}}}})
	e.Create(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "none"}}}}}})
	pod := func(name, node, ip string, labels map[string]string, owners []metav1.OwnerReference) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels, OwnerReferences: owners},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "none"}}}}
		e.Create(p)
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
		if err := e.C.Status().Update(e.Ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	pod("orders-0", "node-a", "10.1.0.1", map[string]string{"app": "orders"}, nil)
	pod("web-5d8f-x", "node-b", "10.1.0.2", map[string]string{"app": "web", "pod-template-hash": "5d8f"},
		[]metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f", UID: "u1", Controller: ptr.To(true)}})
	si := &v1alpha1.ServiceIntent{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders"},
		Spec: v1alpha1.ServiceIntentSpec{Mode: v1alpha1.ModeAudit,
			Target:  v1alpha1.Target{ServiceRef: &v1alpha1.LocalServiceReference{Name: "orders"}},
			Callers: []v1alpha1.Caller{{WorkloadRef: &v1alpha1.WorkloadReference{Kind: v1alpha1.WorkloadDeployment, Name: "web"}}}}}
	e.Create(si)
	return si
}

// checkAuditRules: the audit policy admits the caller web's pod.
func checkAuditRules(t *testing.T, st *policy.State, auditKey string) {
	t.Helper()
	pr := st.Policies[slices.IndexFunc(st.Policies, func(p policy.PolicyRules) bool { return p.Key == auditKey })]
	if !pr.Audit || len(pr.Ingress) != 1 || len(pr.Ingress[0].Peers.Ranges) == 0 {
		t.Fatalf("audit policy rules: %+v", pr)
	}
	if !pr.Ingress[0].Peers.Ranges[0].Contains(netip.MustParseAddr("10.1.0.2")) {
		t.Errorf("the caller web's pod is not a peer of the audit policy: %+v", pr.Ingress[0].Peers)
	}
}

// checkAttribution: an audited event from web to orders is attributed to
// the workloads, the intent and the policy it was compiled into.
func checkAttribution(t *testing.T, obs *flowobserver.Observer, agg *flows.Aggregator, auditKey, policyKey string) {
	t.Helper()
	obs.Handle(flowlog.Event{Time: time.Now(), Verdict: policy.LogAudited, Direction: policy.Ingress, Protocol: 6,
		Src: netip.MustParseAddr("10.1.0.2"), Dst: netip.MustParseAddr("10.1.0.1"), SrcPort: 33000, DstPort: 80, Policies: []string{auditKey}})
	snap := agg.Snapshot(time.Now())
	if len(snap) != 1 || snap[0].Source.WorkloadKind != "Deployment" || snap[0].Source.WorkloadName != "web" ||
		snap[0].Destination.Pod != "orders-0" || !slices.Equal(snap[0].Intents, []string{"shop/orders"}) ||
		!slices.Equal(snap[0].Policies, []string{policyKey}) {
		t.Errorf("attributed flow: %+v", snap)
	}
}

// laterSync makes the agent sync once more (a new namespace is an event it
// syncs on and changes nothing it programs) and waits until a sync that
// began after the agent's last observed effect has been committed.
func laterSync(t *testing.T, e *agenttest.Env, a *agent.Agent) {
	t.Helper()
	n := a.Syncs()
	e.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "unrelated-"}})
	agenttest.WaitFor(t, "a later sync", 5*time.Second, func() bool { return a.Syncs() > n })
}

func checkProgrammed(t *testing.T, a *agent.Agent, gen int64, mode v1alpha1.IntentMode) {
	t.Helper()
	p := a.Programmed()
	if len(p) != 1 || p[0].Namespace != "shop" || p[0].Name != "orders" || p[0].Generation != gen || p[0].Mode != mode || p[0].ProgrammedAt.IsZero() {
		t.Fatalf("programmed %+v, want shop/orders generation %d %s", p, gen, mode)
	}
}
