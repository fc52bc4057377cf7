//go:build e2e

package e2e

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	palisadev1alpha1 "github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/localcluster"
)

// observeTimeout is "within two report intervals" plus the controller's
// reconcile and a probe's round trip.
const observeTimeout = 2*localcluster.ReportInterval + 8*time.Second

// TestFlows follows real traffic from the kernel's verdict log through the
// agents' NodeFlowReports onto the intent's status, in Enforce and Audit
// mode, and reads the same flows from an agent's Hubble API.
func TestFlows(t *testing.T) {
	e := clusterFor(t, "nftables")
	e.scenario(t, "observed-versus-allowed", func(t *testing.T) { flowsObservedVersusAllowed(t, e) })
	e.scenario(t, "hubble-get-flows", func(t *testing.T) { flowsHubble(t, e) })
}

// webIntent protects x/a; x/b may call it on TCP 80. The declared caller
// idle selects no pod, so it never calls: not observed (and unused once the
// window passes).
func webIntent(mode palisadev1alpha1.IntentMode) *palisadev1alpha1.ServiceIntent {
	si := intent("x", "web", targetPods("pod", "a"),
		palisadev1alpha1.Caller{Name: "b", PodSelector: intentSel("pod", "b"), Ports: intentPort(intstr.FromInt32(80), "TCP")},
		palisadev1alpha1.Caller{Name: "idle", PodSelector: intentSel("pod", "nobody"), NamespaceSelector: intentSel("ns", "z")})
	si.Spec.Mode = mode
	return si
}

func flowsObservedVersusAllowed(t *testing.T, e *env) {
	ctx := context.Background()
	xa, xb, xc := e.pod("x/a"), e.pod("x/b"), e.pod("x/c")
	e.apply(t, webIntent(palisadev1alpha1.ModeEnforce))
	e.expect(t, false, onlyToXA(func(from *localcluster.Pod, p localcluster.Port) bool {
		return is(from, "x/b") && p == tcp80
	}))

	// Enforced: every node running a target pod programmed this generation.
	si := e.waitIntent(t, "x", "web", "Enforced=True with n/n nodes", func(si *palisadev1alpha1.ServiceIntent) bool {
		c := meta.FindStatusCondition(si.Status.Conditions, palisadev1alpha1.ConditionEnforced)
		en := si.Status.Enforcement
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == si.Generation &&
			en != nil && en.Generation == si.Generation && en.NodesDesired == 1 && en.NodesProgrammed == 1
	})
	t.Logf("enforced on %d/%d nodes, latency %v", si.Status.Enforcement.NodesProgrammed, si.Status.Enforcement.NodesDesired, si.Status.Enforcement.Latency)

	// The declared caller calls; an undeclared one is dropped.
	if err := localcluster.ProbeOnce(xb, xa, tcp80, time.Second); err != nil {
		t.Fatalf("declared call x/b -> x/a: %v", err)
	}
	if err := localcluster.ProbeOnce(xc, xa, tcp80, 300*time.Millisecond); err == nil {
		t.Fatal("undeclared call x/c -> x/a succeeded in Enforce mode")
	}
	start := time.Now()
	si = e.waitIntent(t, "x", "web", "caller b observed and x/c listed as Dropped", func(si *palisadev1alpha1.ServiceIntent) bool {
		// Keep calling: the kernel logs at a bounded rate per rule, and the
		// probe matrix that just ran may have used up the burst.
		_ = localcluster.ProbeOnce(xc, xa, tcp80, 100*time.Millisecond)
		_ = localcluster.ProbeOnce(xb, xa, tcp80, time.Second)
		return callerObserved(si, "b") && undeclared(si, "c", palisadev1alpha1.VerdictDropped) != nil
	})
	t.Logf("observed on status %v after the calls", time.Since(start).Round(100*time.Millisecond))
	if callerObserved(si, "idle") {
		t.Errorf("caller idle never called but is observed: %+v", si.Status.Callers)
	}
	if si.Status.ObservedCallers != "1/2" || si.Status.Denied < 1 {
		t.Errorf("observedCallers %q denied %d; want 1/2 and >= 1", si.Status.ObservedCallers, si.Status.Denied)
	}
	u := undeclared(si, "c", palisadev1alpha1.VerdictDropped)
	if u.Source.Namespace != "x" || u.Port != 80 || u.Protocol != "TCP" || u.Source.IP != xc.IP.String() {
		t.Errorf("undeclared caller %+v; want x/c from %s on TCP/80", u, xc.IP)
	}
	if c := meta.FindStatusCondition(si.Status.Conditions, palisadev1alpha1.ConditionTrafficConforms); c == nil ||
		c.Status != metav1.ConditionFalse || c.Reason != palisadev1alpha1.ReasonUndeclaredCallersObserved {
		t.Errorf("TrafficConforms = %+v; want False/%s", c, palisadev1alpha1.ReasonUndeclaredCallersObserved)
	}
	// What an SRE reads.
	out := e.kubectl(t, "get", "serviceintents", "-n", "x", "web", "-o", "wide")
	for _, col := range []string{"OBSERVED", "DENIED", "ENFORCED", "1/2"} {
		if !strings.Contains(out, col) {
			t.Errorf("kubectl get -o wide lacks %q:\n%s", col, out)
		}
	}
	out = e.kubectl(t, "describe", "serviceintent", "-n", "x", "web")
	for _, want := range []string{"Undeclared Callers", "Dropped", xc.IP.String(), "UndeclaredCaller"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl describe lacks %q:\n%s", want, out)
		}
	}

	// Audit mode: no enforcing NetworkPolicy, the undeclared call passes and
	// shows as Audited; the declared caller is still observed.
	e.apply(t, webIntent(palisadev1alpha1.ModeAudit))
	e.expect(t, false, allowAll)
	var nps networkingv1.NetworkPolicyList
	if err := e.c.Client.List(ctx, &nps, client.MatchingLabels{palisadev1alpha1.LabelIntent: "web"}); err != nil || len(nps.Items) != 0 {
		t.Errorf("Audit mode: %d NetworkPolicies for the intent (err %v); want none", len(nps.Items), err)
	}
	// Enough calls to rank among the top 20 undeclared callers: the window
	// still holds the Enforce phase's drops (and the matrix's probes).
	for range 12 {
		if err := localcluster.ProbeOnce(xc, xa, tcp80, time.Second); err != nil {
			t.Fatalf("Audit mode: undeclared call x/c -> x/a: %v", err)
		}
	}
	if err := localcluster.ProbeOnce(xb, xa, tcp80, time.Second); err != nil {
		t.Fatalf("Audit mode: declared call x/b -> x/a: %v", err)
	}
	e.waitIntent(t, "x", "web", "x/c listed as Audited and the intent audited on n/n nodes", func(si *palisadev1alpha1.ServiceIntent) bool {
		_ = localcluster.ProbeOnce(xc, xa, tcp80, time.Second)
		en := si.Status.Enforcement
		return undeclared(si, "c", palisadev1alpha1.VerdictAudited) != nil && callerObserved(si, "b") &&
			en != nil && en.Generation == si.Generation && en.NodesProgrammed == en.NodesDesired && en.NodesDesired == 1
	})

	// Back to Enforce: the call is dropped again and Enforced reaches n/n for
	// the new generation.
	e.apply(t, webIntent(palisadev1alpha1.ModeEnforce))
	e.expect(t, false, onlyToXA(func(from *localcluster.Pod, p localcluster.Port) bool {
		return is(from, "x/b") && p == tcp80
	}))
	e.waitIntent(t, "x", "web", "Enforced=True for the new generation", func(si *palisadev1alpha1.ServiceIntent) bool {
		c := meta.FindStatusCondition(si.Status.Conditions, palisadev1alpha1.ConditionEnforced)
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == si.Generation &&
			si.Status.Enforcement != nil && si.Status.Enforcement.Generation == si.Generation
	})
}

func flowsHubble(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	xa, xb, xc := e.pod("x/a"), e.pod("x/b"), e.pod("x/c")
	e.apply(t, webIntent(palisadev1alpha1.ModeEnforce))
	e.expect(t, false, onlyToXA(func(from *localcluster.Pod, p localcluster.Port) bool {
		return is(from, "x/b") && p == tcp80
	}))
	node, ok := e.c.Node(xa.Node)
	if !ok {
		t.Fatalf("no node %s", xa.Node)
	}
	conn, err := grpc.NewClient("passthrough:///"+node.Name,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return e.c.DialNode(ctx, node, localcluster.AgentHubbleAddr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	obs := observerpb.NewObserverClient(conn)

	st, err := obs.ServerStatus(ctx, &observerpb.ServerStatusRequest{})
	if err != nil {
		t.Fatalf("ServerStatus: %v", err)
	}
	if st.GetMaxFlows() == 0 || st.GetNumConnectedNodes().GetValue() != 1 {
		t.Errorf("ServerStatus = %+v", st)
	}

	// Follow x/b's forwarded TCP/80 flows into x/a only, then make one
	// allowed and one dropped call: the stream delivers the allowed one, the
	// filters keep x/c's drop (and the matrix's other probes) out.
	stream, err := obs.GetFlows(ctx, &observerpb.GetFlowsRequest{
		Follow: true,
		Whitelist: []*flowpb.FlowFilter{{
			SourcePod: []string{"x/b"}, DestinationPod: []string{"x/a"},
			Verdict: []flowpb.Verdict{flowpb.Verdict_FORWARDED}, Protocol: []string{"tcp"}, DestinationPort: []string{"80"},
		}},
	})
	if err != nil {
		t.Fatalf("GetFlows follow: %v", err)
	}
	got := make(chan *flowpb.Flow, 16)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				close(got)
				return
			}
			if f := resp.GetFlow(); f != nil {
				got <- f
			}
		}
	}()
	// A follow stream starts with new flows only; keep calling until one arrives.
	var followed *flowpb.Flow
	deadline := time.After(15 * time.Second)
	for followed == nil {
		_ = localcluster.ProbeOnce(xc, xa, tcp80, 200*time.Millisecond)
		if err := localcluster.ProbeOnce(xb, xa, tcp80, time.Second); err != nil {
			t.Fatalf("declared call: %v", err)
		}
		select {
		case f, ok := <-got:
			if !ok {
				t.Fatal("follow stream ended")
			}
			followed = f
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatal("GetFlows follow delivered no flow of x/b -> x/a within 15s")
		}
	}
	if followed.GetVerdict() != flowpb.Verdict_FORWARDED || followed.GetSource().GetPodName() != "b" ||
		followed.GetDestination().GetNamespace() != "x" || followed.GetL4().GetTCP().GetDestinationPort() != 80 {
		t.Errorf("followed flow = %v; want FORWARDED x/b -> x/a TCP/80", followed)
	}
	if followed.GetTrafficDirection() != flowpb.TrafficDirection_INGRESS || len(followed.GetIngressAllowedBy()) == 0 {
		t.Errorf("followed flow direction %v allowed by %v; want INGRESS with the intent's policy", followed.GetTrafficDirection(), followed.GetIngressAllowedBy())
	}

	// Last flows, filtered by verdict and namespace: x/c's drops, nothing else.
	last, err := obs.GetFlows(ctx, &observerpb.GetFlowsRequest{
		Number:    100,
		Whitelist: []*flowpb.FlowFilter{{Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}, DestinationPod: []string{"x/"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	drops := 0
	for {
		resp, err := last.Recv()
		if err != nil {
			break
		}
		f := resp.GetFlow()
		if f == nil {
			continue
		}
		if f.GetVerdict() != flowpb.Verdict_DROPPED || f.GetDestination().GetNamespace() != "x" {
			t.Errorf("filter let through %v", f)
		}
		if f.GetSource().GetPodName() == "c" {
			drops++
		}
	}
	if drops == 0 {
		t.Error("GetFlows(verdict DROPPED, destination x/) returned no drop of x/c")
	}
}

// kubectl runs kubectl against the cluster and returns its output.
func (e *env) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("kubectl", append([]string{"--kubeconfig", e.c.KubeconfigPath()}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitIntent polls the intent until ok holds, for observeTimeout plus the
// time enforcement may take.
func (e *env) waitIntent(t *testing.T, ns, name, what string, ok func(*palisadev1alpha1.ServiceIntent) bool) *palisadev1alpha1.ServiceIntent {
	t.Helper()
	deadline := time.Now().Add(observeTimeout + enforceTimeout)
	for {
		var si palisadev1alpha1.ServiceIntent
		err := e.c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &si)
		if err == nil && ok(&si) {
			return &si
		}
		if time.Now().After(deadline) {
			t.Fatalf("intent %s/%s: %s never happened (err %v); status:\n%+v", ns, name, what, err, si.Status)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func callerObserved(si *palisadev1alpha1.ServiceIntent, name string) bool {
	for _, c := range si.Status.Callers {
		if c.Name == name {
			return c.Observed && c.Connections > 0 && c.LastSeen != nil
		}
	}
	return false
}

func undeclared(si *palisadev1alpha1.ServiceIntent, pod string, verdict palisadev1alpha1.FlowVerdict) *palisadev1alpha1.UndeclaredCaller {
	for i, u := range si.Status.UndeclaredCallers {
		if u.Source.Namespace == "x" && u.Source.Pod == pod && u.Verdict == verdict && u.Port == 80 && u.Protocol == "TCP" {
			return &si.Status.UndeclaredCallers[i]
		}
	}
	return nil
}
