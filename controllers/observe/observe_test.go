package observe

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

var (
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // the intent's creation
	now = t0.Add(2 * time.Hour)
)

func at(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(d)) }

func mat(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(now.Add(d)) }

func sel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func tcp(from, to int32) compiler.Port {
	p := compiler.Port{Port: intstr.FromInt32(from), Protocol: corev1.ProtocolTCP}
	if to != from {
		p.EndPort = ptr.To(to)
	}
	return p
}

// callers of shop/orders: checkout on 8080, fraud from risk namespaces on a
// named port, a partner address range, a second checkout entry that repeats
// the first on all ports, and one that does not resolve.
var callers = []compiler.Caller{
	{Name: "checkout", Resolved: true, Namespace: "shop", PodSelector: sel("app", "checkout"), Ports: []compiler.Port{tcp(8080, 8080)}},
	{Name: "fraud", Resolved: true, PodSelector: sel("app", "fraud"), NamespaceSelector: sel("team", "risk"),
		Ports: []compiler.Port{{Port: intstr.FromString("http")}}},
	{Name: "partner", Resolved: true, IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.7/32"}},
		Ports: []compiler.Port{tcp(443, 450)}},
	{Name: "checkout-any", Resolved: true, Namespace: "shop", PodSelector: sel("app", "checkout")},
	{Name: "ghost", Resolved: false, Namespace: "shop"},
}

var namespaces = map[string]labels.Set{
	"shop":  {"kubernetes.io/metadata.name": "shop"},
	"risk":  {"kubernetes.io/metadata.name": "risk", "team": "risk"},
	"other": {"kubernetes.io/metadata.name": "other"},
}

func pod(ns, kind, name string, lbl ...string) v1alpha1.FlowEndpoint {
	e := v1alpha1.FlowEndpoint{Namespace: ns, WorkloadKind: kind, WorkloadName: name, Pod: name + "-1", IP: "10.0.0.1", Labels: map[string]string{}}
	for i := 0; i+1 < len(lbl); i += 2 {
		e.Labels[lbl[i]] = lbl[i+1]
	}
	return e
}

func addr(ip string) v1alpha1.FlowEndpoint { return v1alpha1.FlowEndpoint{IP: ip} }

var (
	checkout = pod("shop", "Deployment", "checkout", "app", "checkout")
	fraud    = pod("risk", "Deployment", "fraud", "app", "fraud")
	evil     = pod("other", "Deployment", "evil", "app", "evil")
	target   = pod("shop", "Deployment", "orders", "app", "orders")
	cart     = pod("shop", "StatefulSet", "cart", "app", "cart")
)

// flow is a flow into orders that names the intent.
func flow(src v1alpha1.FlowEndpoint, port int32, verdict v1alpha1.FlowVerdict, count int64, first, last time.Duration) v1alpha1.FlowRecord {
	return v1alpha1.FlowRecord{Source: src, Destination: target, Direction: v1alpha1.FlowIngress, Protocol: "TCP", Port: port,
		Verdict: verdict, Policies: []string{"shop/palisade-orders"}, Intents: []string{"shop/orders"},
		Count: count, FirstSeen: at(first), LastSeen: at(last)}
}

func report(node string, reportedAgo time.Duration, flows []v1alpha1.FlowRecord, programmed ...v1alpha1.ProgrammedIntent) v1alpha1.NodeFlowReport {
	r := v1alpha1.NodeFlowReport{ObjectMeta: metav1.ObjectMeta{Name: node}, Spec: v1alpha1.NodeFlowReportSpec{
		NodeName: node, WindowStart: at(-reportedAgo - 10*time.Minute), ReportedAt: at(-reportedAgo), IntervalSeconds: 10,
		Flows: flows, Intents: programmed}}
	return r
}

func programmed(gen int64, mode v1alpha1.IntentMode, ago time.Duration) v1alpha1.ProgrammedIntent {
	return v1alpha1.ProgrammedIntent{Namespace: "shop", Name: "orders", Generation: gen, Mode: mode, ProgrammedAt: mat(-ago)}
}

func runningPod(name, node string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
}

func intent(mode v1alpha1.IntentMode, gen int64, prev v1alpha1.ServiceIntentStatus) *v1alpha1.ServiceIntent {
	return &v1alpha1.ServiceIntent{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders", Generation: gen, CreationTimestamp: metav1.NewTime(t0)},
		Spec:       v1alpha1.ServiceIntentSpec{Mode: mode},
		Status:     prev,
	}
}

func input(si *v1alpha1.ServiceIntent, pods []corev1.Pod, reports ...v1alpha1.NodeFlowReport) Input {
	st := make([]v1alpha1.CallerStatus, len(callers))
	for i, c := range callers {
		st[i] = v1alpha1.CallerStatus{Name: c.Name, Kind: "X", Resolved: c.Resolved}
	}
	return Input{Intent: si, Callers: callers, CallerStatus: st, TargetPods: pods, NamespaceLabels: namespaces, Reports: reports, Now: now}
}

func TestFirstCaller(t *testing.T) {
	m := newMatcher(input(intent("", 1, v1alpha1.ServiceIntentStatus{}), nil))
	udp := func(f v1alpha1.FlowRecord) v1alpha1.FlowRecord { f.Protocol = "UDP"; return f }
	for _, tc := range []struct {
		name string
		f    v1alpha1.FlowRecord
		want int
	}{
		{"pod selector in the caller's namespace, declared port", flow(checkout, 8080, "Allowed", 1, 0, 0), 0},
		{"other port: the later entry that allows all ports", flow(checkout, 9090, "Allowed", 1, 0, 0), 3},
		{"same labels in another namespace", flow(pod("other", "Deployment", "checkout", "app", "checkout"), 8080, "Allowed", 1, 0, 0), -1},
		{"namespace selector and pod selector", flow(fraud, 8443, "Allowed", 1, 0, 0), 1},
		{"named port matches by protocol only", udp(flow(fraud, 53, "Allowed", 1, 0, 0)), -1},
		{"namespace selector, wrong pod labels", flow(pod("risk", "Deployment", "batch", "app", "batch"), 8443, "Allowed", 1, 0, 0), -1},
		{"namespace unknown to the cache", flow(pod("gone", "Deployment", "fraud", "app", "fraud"), 8443, "Allowed", 1, 0, 0), -1},
		{"address in the block, port in the range", flow(addr("203.0.113.9"), 450, "Allowed", 1, 0, 0), 2},
		{"address in the block, port past the range", flow(addr("203.0.113.9"), 451, "Allowed", 1, 0, 0), -1},
		{"address in the except range", flow(addr("203.0.113.7"), 443, "Allowed", 1, 0, 0), -1},
		{"IPv4-mapped IPv6 address", flow(addr("::ffff:203.0.113.9"), 443, "Allowed", 1, 0, 0), 2},
		{"address outside the block", flow(addr("198.51.100.1"), 443, "Allowed", 1, 0, 0), -1},
		{"a pod inside the block's range is not an address peer", flow(v1alpha1.FlowEndpoint{Namespace: "x", WorkloadKind: "Pod", WorkloadName: "p", IP: "203.0.113.9"}, 443, "Allowed", 1, 0, 0), -1},
		{"unparsable address", flow(addr("not-an-ip"), 443, "Allowed", 1, 0, 0), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.firstCaller(&tc.f); got != tc.want {
				t.Errorf("caller %d, want %d", got, tc.want)
			}
		})
	}
}

func TestObservedCallers(t *testing.T) {
	prevSeen := at(-time.Hour)
	prevFuture := at(time.Minute) // a previous lastSeen later than the reports: kept
	prev := v1alpha1.ServiceIntentStatus{Callers: []v1alpha1.CallerStatus{
		{Name: "partner", LastSeen: &prevSeen},
		{Name: "checkout", LastSeen: &prevFuture},
	}}
	in := input(intent(v1alpha1.ModeEnforce, 3, prev), nil,
		report("node-a", 5*time.Second, []v1alpha1.FlowRecord{
			flow(checkout, 8080, "Allowed", 5, -5*time.Minute, -2*time.Minute),
			flow(fraud, 8443, "Allowed", 2, -3*time.Minute, -30*time.Second),
		}),
		report("node-b", 5*time.Second, []v1alpha1.FlowRecord{
			flow(checkout, 8080, "Allowed", 7, -4*time.Minute, -time.Minute),
		}),
	)
	res := Compute(in, Options{})
	want := []v1alpha1.CallerStatus{
		{Name: "checkout", Kind: "X", Resolved: true, Observed: true, Connections: 12, LastSeen: &prevFuture},
		{Name: "fraud", Kind: "X", Resolved: true, Observed: true, Connections: 2, LastSeen: ptr.To(at(-30 * time.Second))},
		{Name: "partner", Kind: "X", Resolved: true, LastSeen: &prevSeen},
		{Name: "checkout-any", Kind: "X", Resolved: true},
		{Name: "ghost", Kind: "X"},
	}
	if !apiequality.Semantic.DeepEqual(res.Callers, want) {
		t.Errorf("callers:\n%+v\nwant\n%+v", res.Callers, want)
	}
	if res.ObservedCallers != "2/5" {
		t.Errorf("observedCallers %q, want 2/5", res.ObservedCallers)
	}
	if res.UndeclaredCallersTotal != 0 || res.Denied != 0 || res.TrafficConforms.Status != metav1.ConditionTrue ||
		res.TrafficConforms.Reason != v1alpha1.ReasonNoUndeclaredCallers {
		t.Errorf("no undeclared caller expected: %+v %d %d %+v", res.UndeclaredCallers, res.UndeclaredCallersTotal, res.Denied, res.TrafficConforms)
	}
}

func TestUndeclaredCallers(t *testing.T) {
	evil2 := evil
	evil2.Pod, evil2.IP = "evil-2", "10.0.0.2"
	otherIntent := flow(evil, 8080, "Dropped", 100, -time.Minute, 0)
	otherIntent.Intents = []string{"shop/payments"}
	egress := flow(evil, 8080, "Dropped", 100, -time.Minute, 0)
	egress.Direction = v1alpha1.FlowEgress
	allowedUnmatched := flow(evil, 8080, "Allowed", 100, -time.Minute, 0)
	for _, tc := range []struct {
		name       string
		mode       v1alpha1.IntentMode
		prev       []v1alpha1.UndeclaredCaller
		reports    []v1alpha1.NodeFlowReport
		want       []v1alpha1.UndeclaredCaller
		wantTotal  int32
		wantDenied int64
		wantNew    int
		wantMsg    string
		pods       []corev1.Pod
	}{{
		name: "summed over nodes by identity, port and verdict",
		reports: []v1alpha1.NodeFlowReport{
			report("node-a", 0, []v1alpha1.FlowRecord{flow(evil, 8080, "Dropped", 3, -10*time.Minute, -5*time.Minute), flow(addr("198.51.100.1"), 443, "Dropped", 1, -time.Minute, -time.Minute)}),
			report("node-b", 0, []v1alpha1.FlowRecord{flow(evil2, 8080, "Dropped", 4, -8*time.Minute, -time.Minute), flow(evil, 9090, "Dropped", 2, -time.Minute, -time.Minute)}),
		},
		want: []v1alpha1.UndeclaredCaller{
			{Source: evil2, Protocol: "TCP", Port: 8080, Verdict: "Dropped", Count: 7, FirstSeen: at(-10 * time.Minute), LastSeen: at(-time.Minute)},
			{Source: evil, Protocol: "TCP", Port: 9090, Verdict: "Dropped", Count: 2, FirstSeen: at(-time.Minute), LastSeen: at(-time.Minute)},
			{Source: addr("198.51.100.1"), Protocol: "TCP", Port: 443, Verdict: "Dropped", Count: 1, FirstSeen: at(-time.Minute), LastSeen: at(-time.Minute)},
		},
		wantTotal: 3, wantDenied: 10, wantNew: 3,
		wantMsg: "3 undeclared callers: other/Deployment/evil (pod evil-2, 10.0.0.2) → 8080/TCP Dropped ×7; other/Deployment/evil (pod evil-1, 10.0.0.1) → 9090/TCP Dropped ×2; 198.51.100.1 → 443/TCP Dropped ×1",
	}, {
		name: "audit mode: audited, and only the new one is new",
		mode: v1alpha1.ModeAudit,
		prev: []v1alpha1.UndeclaredCaller{{Source: evil, Protocol: "TCP", Port: 8080, Verdict: "Audited", Count: 1}},
		reports: []v1alpha1.NodeFlowReport{report("node-a", 0, []v1alpha1.FlowRecord{
			flow(evil, 8080, "Audited", 3, -time.Minute, 0), flow(cart, 9999, "Audited", 1, -time.Minute, -time.Minute),
			// checkout on 8080 is declared: a declared flow, even audited, is no undeclared caller.
			flow(checkout, 8080, "Audited", 1, -time.Minute, -time.Minute),
		})},
		want: []v1alpha1.UndeclaredCaller{
			{Source: evil, Protocol: "TCP", Port: 8080, Verdict: "Audited", Count: 3, FirstSeen: at(-time.Minute), LastSeen: at(0)},
			{Source: cart, Protocol: "TCP", Port: 9999, Verdict: "Audited", Count: 1, FirstSeen: at(-time.Minute), LastSeen: at(-time.Minute)},
		},
		wantTotal: 2, wantDenied: 4, wantNew: 1,
	}, {
		name: "not attributed: other intent, egress, stale report, before the window, allowed by the intent",
		reports: []v1alpha1.NodeFlowReport{
			report("node-a", 0, []v1alpha1.FlowRecord{otherIntent, egress, allowedUnmatched, flow(evil, 1, "Dropped", 1, -30*time.Hour, -25*time.Hour)}),
			report("node-stale", staleAge, []v1alpha1.FlowRecord{flow(evil, 8080, "Dropped", 1, 0, 0)}),
		},
		wantMsg: "",
	}, {
		// In a zero-trust namespace the caller's egress baseline drops an
		// undeclared call on the caller's node: the target never sees it,
		// and the intent still lists it. Only flows into a target pod count.
		name: "dropped by the caller's egress policy on its way to a target pod",
		pods: []corev1.Pod{runningPod("orders-1", "node-a")},
		reports: []v1alpha1.NodeFlowReport{report("node-b", 0, []v1alpha1.FlowRecord{egress, func() v1alpha1.FlowRecord {
			f := egress
			f.Destination.Pod = "not-a-target"
			return f
		}()})},
		want: []v1alpha1.UndeclaredCaller{
			{Source: evil, Protocol: "TCP", Port: 8080, Verdict: "Dropped", Count: 100, FirstSeen: at(-time.Minute), LastSeen: at(0)},
		},
		wantTotal: 1, wantDenied: 100, wantNew: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res := Compute(input(intent(tc.mode, 1, v1alpha1.ServiceIntentStatus{UndeclaredCallers: tc.prev}), tc.pods, tc.reports...), Options{})
			if !apiequality.Semantic.DeepEqual(res.UndeclaredCallers, tc.want) {
				t.Errorf("undeclared:\n%+v\nwant\n%+v", res.UndeclaredCallers, tc.want)
			}
			if res.UndeclaredCallersTotal != tc.wantTotal || res.Denied != tc.wantDenied || len(res.NewUndeclared) != tc.wantNew {
				t.Errorf("total %d denied %d new %d, want %d %d %d", res.UndeclaredCallersTotal, res.Denied, len(res.NewUndeclared), tc.wantTotal, tc.wantDenied, tc.wantNew)
			}
			c := res.TrafficConforms
			if wantFalse := tc.wantTotal > 0; wantFalse != (c.Status == metav1.ConditionFalse) ||
				(wantFalse && c.Reason != v1alpha1.ReasonUndeclaredCallersObserved) || (!wantFalse && c.Reason != v1alpha1.ReasonNoUndeclaredCallers) {
				t.Errorf("TrafficConforms %s/%s", c.Status, c.Reason)
			}
			if tc.wantMsg != "" && c.Message != tc.wantMsg {
				t.Errorf("message\n%s\nwant\n%s", c.Message, tc.wantMsg)
			}
		})
	}
}

func TestUndeclaredCallersBounded(t *testing.T) {
	var flows []v1alpha1.FlowRecord
	for i := range 30 {
		flows = append(flows, flow(addr(fmt.Sprintf("198.51.100.%d", i)), 443, "Dropped", int64(i+1), -time.Minute, -time.Minute))
	}
	res := Compute(input(intent("", 1, v1alpha1.ServiceIntentStatus{}), nil, report("node-a", 0, flows)), Options{})
	if len(res.UndeclaredCallers) != MaxUndeclaredCallers || res.UndeclaredCallersTotal != 30 {
		t.Fatalf("%d listed of %d, want %d of 30", len(res.UndeclaredCallers), res.UndeclaredCallersTotal, MaxUndeclaredCallers)
	}
	if res.Denied != 30*31/2 {
		t.Errorf("denied %d counts all 30, want %d", res.Denied, 30*31/2)
	}
	for i, u := range res.UndeclaredCallers {
		if u.Count != int64(30-i) {
			t.Fatalf("entry %d has count %d: not the top by count", i, u.Count)
		}
	}
	if !strings.HasSuffix(res.TrafficConforms.Message, "and 27 more") {
		t.Errorf("message %q does not say how many more", res.TrafficConforms.Message)
	}
}

func TestUnusedCallers(t *testing.T) {
	seen := func(d time.Duration) *metav1.Time { return ptr.To(at(-d)) }
	prev := v1alpha1.ServiceIntentStatus{Callers: []v1alpha1.CallerStatus{
		{Name: "checkout", LastSeen: seen(30 * time.Minute)},
		{Name: "fraud", LastSeen: seen(90 * time.Minute)},
	}}
	for _, tc := range []struct {
		name        string
		window      time.Duration
		want        []string
		wantRecheck time.Duration
	}{
		// The intent is 2h old; callers never seen count from its creation.
		{"default window (24h): none yet", 0, nil, 22*time.Hour + time.Second},
		{"1h: never seen and seen 90m ago", time.Hour, []string{"fraud", "partner", "checkout-any", "ghost"}, 30*time.Minute + time.Second},
		{"3h: none", 3 * time.Hour, nil, time.Hour + time.Second},
		{"20m: all", 20 * time.Minute, []string{"checkout", "fraud", "partner", "checkout-any", "ghost"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Compute(input(intent("", 1, prev), nil), Options{UnusedCallerWindow: tc.window})
			if !slices.Equal(res.UnusedCallers, tc.want) {
				t.Errorf("unused %v, want %v", res.UnusedCallers, tc.want)
			}
			if res.RecheckAfter != tc.wantRecheck {
				t.Errorf("recheck after %v, want %v", res.RecheckAfter, tc.wantRecheck)
			}
		})
	}
	// A fresh report's flow makes the caller used again.
	res := Compute(input(intent("", 1, prev), nil, report("n", 0, []v1alpha1.FlowRecord{flow(fraud, 80, "Allowed", 1, -time.Minute, -time.Minute)})),
		Options{UnusedCallerWindow: time.Hour})
	if slices.Contains(res.UnusedCallers, "fraud") {
		t.Errorf("fraud was just seen, yet unused: %v", res.UnusedCallers)
	}
}

func TestEnforcement(t *testing.T) {
	hostNet := runningPod("orders-host", "node-h")
	hostNet.Spec.HostNetwork = true
	pending := runningPod("orders-pending", "node-p")
	pending.Status.Phase = corev1.PodPending
	pods := []corev1.Pod{runningPod("orders-1", "node-a"), runningPod("orders-2", "node-b"), runningPod("orders-3", "node-a"), hostNet, pending,
		{ObjectMeta: metav1.ObjectMeta{Name: "unscheduled"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}}
	changed := mat(-time.Minute)
	sameGen := v1alpha1.ServiceIntentStatus{Enforcement: &v1alpha1.EnforcementStatus{Generation: 4, ChangedAt: &changed}}
	for _, tc := range []struct {
		name       string
		mode       v1alpha1.IntentMode
		prev       v1alpha1.ServiceIntentStatus
		pods       []corev1.Pod
		reports    []v1alpha1.NodeFlowReport
		want       v1alpha1.EnforcementStatus
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMsg    string
	}{{
		name: "first sight of the generation: one of two nodes",
		pods: pods,
		reports: []v1alpha1.NodeFlowReport{
			report("node-a", 0, nil, programmed(4, v1alpha1.ModeEnforce, 5*time.Second)),
			report("node-b", 0, nil, programmed(3, v1alpha1.ModeEnforce, time.Hour)),
			report("node-h", 0, nil, programmed(4, v1alpha1.ModeEnforce, 0)),
		},
		want:       v1alpha1.EnforcementStatus{Generation: 4, NodesDesired: 2, NodesProgrammed: 1, ChangedAt: ptr.To(mat(0))},
		wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonProgramming,
		wantMsg: "1/2 nodes enforce generation 4; waiting for node-b",
	}, {
		name: "all nodes: programmedAt is the last node's, latency from changedAt",
		prev: sameGen, pods: pods,
		reports: []v1alpha1.NodeFlowReport{
			report("node-a", 0, nil, programmed(4, v1alpha1.ModeEnforce, 50*time.Second)),
			report("node-b", 0, nil, programmed(5, v1alpha1.ModeEnforce, 20*time.Second)),
		},
		want: v1alpha1.EnforcementStatus{Generation: 4, NodesDesired: 2, NodesProgrammed: 2, ChangedAt: &changed,
			ProgrammedAt: ptr.To(mat(-20 * time.Second)), Latency: &metav1.Duration{Duration: 40 * time.Second}},
		wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonProgrammed, wantMsg: "2/2 nodes enforce generation 4",
	}, {
		name:    "latency to the microsecond: a change in force within the second it was seen",
		prev:    v1alpha1.ServiceIntentStatus{Enforcement: &v1alpha1.EnforcementStatus{Generation: 4, ChangedAt: ptr.To(mat(-900 * time.Millisecond))}},
		pods:    pods[:1],
		reports: []v1alpha1.NodeFlowReport{report("node-a", 0, nil, programmed(4, v1alpha1.ModeEnforce, 400*time.Millisecond))},
		want: v1alpha1.EnforcementStatus{Generation: 4, NodesDesired: 1, NodesProgrammed: 1, ChangedAt: ptr.To(mat(-900 * time.Millisecond)),
			ProgrammedAt: ptr.To(mat(-400 * time.Millisecond)), Latency: &metav1.Duration{Duration: 500 * time.Millisecond}},
		wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonProgrammed, wantMsg: "1/1 nodes enforce generation 4",
	}, {
		name: "stale report and wrong mode do not count",
		prev: sameGen, pods: pods,
		reports: []v1alpha1.NodeFlowReport{
			report("node-a", staleAge, nil, programmed(4, v1alpha1.ModeEnforce, time.Minute)),
			report("node-b", 0, nil, programmed(4, v1alpha1.ModeAudit, time.Minute)),
		},
		want:       v1alpha1.EnforcementStatus{Generation: 4, NodesDesired: 2, ChangedAt: &changed},
		wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonProgramming,
		wantMsg: "0/2 nodes enforce generation 4; waiting for node-a, node-b",
	}, {
		name: "audit mode says audit; programmed before the controller saw it: no negative latency",
		mode: v1alpha1.ModeAudit, pods: pods[:1],
		reports: []v1alpha1.NodeFlowReport{report("node-a", 0, nil, programmed(4, v1alpha1.ModeAudit, time.Minute))},
		want: v1alpha1.EnforcementStatus{Generation: 4, NodesDesired: 1, NodesProgrammed: 1, ChangedAt: ptr.To(mat(0)),
			ProgrammedAt: ptr.To(mat(-time.Minute)), Latency: &metav1.Duration{}},
		wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonProgrammed, wantMsg: "1/1 nodes audit generation 4",
	}, {
		name:       "no running target pod",
		pods:       []corev1.Pod{pending, hostNet},
		want:       v1alpha1.EnforcementStatus{Generation: 4, ChangedAt: ptr.To(mat(0))},
		wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonNoTargetPods,
		wantMsg: "no running pod is selected, so no node has anything to enforce",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res := Compute(input(intent(tc.mode, 4, tc.prev), tc.pods, tc.reports...), Options{})
			if !apiequality.Semantic.DeepEqual(*res.Enforcement, tc.want) {
				t.Errorf("enforcement:\n%+v\nwant\n%+v", *res.Enforcement, tc.want)
			}
			c := res.Enforced
			if c.Type != v1alpha1.ConditionEnforced || c.Status != tc.wantStatus || c.Reason != tc.wantReason || c.Message != tc.wantMsg {
				t.Errorf("Enforced %s/%s %q, want %s/%s %q", c.Status, c.Reason, c.Message, tc.wantStatus, tc.wantReason, tc.wantMsg)
			}
		})
	}
}

// TestEnforcementLatencyBelowASecond: the change's time keeps its
// fraction of a second, so a change programmed 300 ms after the controller
// saw it reports 300 ms (it once read the second-truncated clock the rest
// of the status uses, and reported up to a second more).
func TestEnforcementLatencyBelowASecond(t *testing.T) {
	seen := now.Add(700 * time.Millisecond)
	in := input(intent("", 4, v1alpha1.ServiceIntentStatus{}), []corev1.Pod{runningPod("orders-1", "node-a")})
	in.Now = seen
	first := Compute(in, Options{})
	if got := first.Enforcement.ChangedAt; got == nil || !got.Time.Equal(seen) {
		t.Fatalf("changedAt %v, want %v", got, seen)
	}
	programmedAt := seen.Add(300 * time.Millisecond)
	in = input(intent("", 4, v1alpha1.ServiceIntentStatus{Enforcement: first.Enforcement}), []corev1.Pod{runningPod("orders-1", "node-a")},
		report("node-a", 0, nil, v1alpha1.ProgrammedIntent{Namespace: "shop", Name: "orders", Generation: 4, Mode: v1alpha1.ModeEnforce,
			ProgrammedAt: metav1.NewMicroTime(programmedAt)}))
	in.Now = programmedAt.Add(time.Second)
	second := Compute(in, Options{})
	if l := second.Enforcement.Latency; l == nil || l.Duration != 300*time.Millisecond {
		t.Errorf("latency %v, want 300ms", l)
	}
}

// TestComputeIsStable: computing again from the status just computed, with
// the same reports, gives the same status (a resync writes nothing).
func TestComputeIsStable(t *testing.T) {
	reports := []v1alpha1.NodeFlowReport{
		report("node-a", 0, []v1alpha1.FlowRecord{flow(checkout, 8080, "Allowed", 5, -time.Minute, 0), flow(evil, 8080, "Dropped", 2, -time.Minute, 0)},
			programmed(2, v1alpha1.ModeEnforce, time.Second)),
	}
	si := intent("", 2, v1alpha1.ServiceIntentStatus{})
	first := Compute(input(si, []corev1.Pod{runningPod("o", "node-a")}, reports...), Options{})
	si.Status.Callers, si.Status.UndeclaredCallers, si.Status.Enforcement = first.Callers, first.UndeclaredCallers, first.Enforcement
	in := input(si, []corev1.Pod{runningPod("o", "node-a")}, reports...)
	in.Now = now.Add(7 * time.Second)
	second := Compute(in, Options{})
	second.RecheckAfter, first.RecheckAfter = 0, 0
	if len(second.NewUndeclared) != 0 {
		t.Errorf("already listed callers reported as new: %+v", second.NewUndeclared)
	}
	first.NewUndeclared = nil
	if !apiequality.Semantic.DeepEqual(first, second) {
		t.Errorf("second computation differs:\n%+v\n%+v", first, second)
	}
}

// staleAge is just past the staleness limit of report()'s 10 s interval.
const staleAge = (StaleIntervals*10 + 1) * time.Second
