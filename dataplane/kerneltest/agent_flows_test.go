package kerneltest

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/agent"
	"github.com/palisade-dev/palisade/dataplane/agent/agentcache"
	"github.com/palisade-dev/palisade/dataplane/agent/flowobserver"
	"github.com/palisade-dev/palisade/dataplane/agent/report"
	"github.com/palisade-dev/palisade/dataplane/flowlog"
	"github.com/palisade-dev/palisade/dataplane/flows"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// TestAgentReportsFlows runs the whole flow path on the real kernel: the
// agent programs node-a's nftables (with verdict logging) from a real API
// server, the flowlog Reader reads NFLOG in node-a's namespace, and the
// report writer puts the flows in the node's NodeFlowReport. One allowed and
// one denied connection must show up with the right pods, workloads,
// verdicts, policies and intent.
func TestAgentReportsFlows(t *testing.T) {
	c := newCluster(t)
	cfg := testenv.Start(t)
	cl, scheme := testenv.Client(t, cfg)
	e := &apiEnv{cfg: cfg, scheme: scheme, c: cl}
	e.ensureObjects(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeA}}
	if err := cl.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	// x/a admits x/b on TCP 80; the policy belongs to intent x/web.
	port80 := intstr.FromInt32(80)
	e.apply(t, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "palisade-web", Labels: map[string]string{
			v1alpha1.LabelIntent: "web", v1alpha1.LabelIntentNamespace: "x", v1alpha1.LabelIntentGeneration: "1"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: app("a")},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: app("b")}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port80}},
			}},
		},
	})

	opts := agentcache.Options()
	opts.Scheme = scheme
	ca, err := cache.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ca.Start(ctx) }()
	reader := flowlog.NewReader(flowlog.Config{NetNSFd: c.a.Fd})
	agg := flows.NewAggregator(1000, time.Hour)
	a, err := agent.New(agent.Config{NodeName: nodeA, MinInterval: 20 * time.Millisecond}, ca, nft.New(nft.WithNetNSFd(c.a.Fd)))
	if err != nil {
		t.Fatal(err)
	}
	a.Flows = &flowobserver.Observer{Events: reader, Aggregator: agg}
	w := &report.Writer{Client: cl, NodeName: nodeA, Interval: 500 * time.Millisecond, Aggregator: agg,
		Programmed: a.Programmed, Ready: a.Ready}
	done := make(chan error, 1)
	go func() { done <- a.Start(ctx) }()
	go func() { _ = w.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	select {
	case <-reader.Ready():
	case <-time.After(15 * time.Second):
		t.Fatal("the flow log reader did not bind its group")
	}
	c.eventually(t, "x/b allowed, x/c denied", []probe{tcp("x/b", "x/a", 80, yes), tcp("x/c", "x/a", 80, no)})

	find := func(spec *v1alpha1.NodeFlowReportSpec, src string, verdict v1alpha1.FlowVerdict) *v1alpha1.FlowRecord {
		for i := range spec.Flows {
			f := &spec.Flows[i]
			if f.Source.Namespace == "x" && f.Source.Pod == src && f.Destination.Pod == "a" && f.Verdict == verdict && f.Port == 80 {
				return f
			}
		}
		return nil
	}
	var report v1alpha1.NodeFlowReport
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cl.Get(ctx, client.ObjectKey{Name: nodeA}, &report)
		if err == nil && find(&report.Spec, "b", v1alpha1.VerdictAllowed) != nil && find(&report.Spec, "c", v1alpha1.VerdictDropped) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report without both flows (err %v): %+v\nreader %+v", err, report.Spec, reader.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []struct {
		src     string
		verdict v1alpha1.FlowVerdict
	}{{"b", v1alpha1.VerdictAllowed}, {"c", v1alpha1.VerdictDropped}} {
		f := find(&report.Spec, want.src, want.verdict)
		if f.Direction != v1alpha1.FlowIngress || f.Protocol != "TCP" ||
			f.Source.WorkloadKind != "Pod" || f.Source.WorkloadName != want.src || f.Source.Labels["app"] != want.src ||
			f.Destination.Namespace != "x" || f.Destination.IP != c.pods["x/a"].IP4.String() ||
			!slices.Equal(f.Policies, []string{"x/palisade-web"}) || !slices.Equal(f.Intents, []string{"x/web"}) || f.Count < 1 {
			t.Errorf("%s %s: record %+v", want.src, want.verdict, f)
		}
	}
	if len(report.OwnerReferences) != 1 || report.OwnerReferences[0].UID != node.UID {
		t.Errorf("owner references %+v", report.OwnerReferences)
	}
	if in := report.Spec.Intents; len(in) != 1 || in[0].Name != "web" || in[0].Generation != 1 || in[0].Mode != v1alpha1.ModeEnforce {
		t.Errorf("programmed intents %+v", in)
	}
}
