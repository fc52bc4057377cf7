package serviceintent

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func TestChangedReportKeys(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	base := func() *v1alpha1.NodeFlowReport {
		return &v1alpha1.NodeFlowReport{Spec: v1alpha1.NodeFlowReportSpec{
			NodeName: "node-1", IntervalSeconds: 10, ReportedAt: metav1.NewTime(at),
			Intents: []v1alpha1.ProgrammedIntent{
				{Namespace: "shop", Name: "orders", Generation: 1, Mode: v1alpha1.ModeEnforce},
				{Namespace: "shop", Name: "payments", Generation: 4, Mode: v1alpha1.ModeEnforce},
				{Namespace: "shop", Name: "cart", Generation: 2, Mode: v1alpha1.ModeEnforce},
			},
			Flows: []v1alpha1.FlowRecord{
				{Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictAllowed, Intents: []string{"shop/orders"}, Count: 3},
				{Direction: v1alpha1.FlowEgress, Verdict: v1alpha1.VerdictDropped, Destination: v1alpha1.FlowEndpoint{Namespace: "bank", Pod: "vault-0"}, Count: 1},
			},
		}}
	}
	later := func(d time.Duration) func(*v1alpha1.NodeFlowReport) {
		return func(r *v1alpha1.NodeFlowReport) { r.Spec.ReportedAt = metav1.NewTime(at.Add(d)) }
	}
	tests := []struct {
		name   string
		change []func(*v1alpha1.NodeFlowReport)
		want   []string
	}{
		{"rewritten unchanged at the next interval: nobody", []func(*v1alpha1.NodeFlowReport){later(10 * time.Second)}, nil},
		{"one intent's generation programmed", []func(*v1alpha1.NodeFlowReport){later(time.Second), func(r *v1alpha1.NodeFlowReport) { r.Spec.Intents[1].Generation = 5 }},
			[]string{"shop/payments"}},
		{"an intent no longer programmed", []func(*v1alpha1.NodeFlowReport){func(r *v1alpha1.NodeFlowReport) { r.Spec.Intents = r.Spec.Intents[:2] }},
			[]string{"shop/cart"}},
		{"traffic of one intent", []func(*v1alpha1.NodeFlowReport){later(10 * time.Second), func(r *v1alpha1.NodeFlowReport) { r.Spec.Flows[0].Count = 7 }},
			[]string{"shop/orders"}},
		{"a first flow to an intent", []func(*v1alpha1.NodeFlowReport){func(r *v1alpha1.NodeFlowReport) {
			r.Spec.Flows = append(r.Spec.Flows, v1alpha1.FlowRecord{Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictDropped, Intents: []string{"shop/cart"}})
		}}, []string{"shop/cart"}},
		{"a denied call into a namespace", []func(*v1alpha1.NodeFlowReport){func(r *v1alpha1.NodeFlowReport) { r.Spec.Flows[1].Count = 2 }},
			[]string{"denied-into-pod:bank/vault-0"}},
		{"the old report had gone stale: everyone", []func(*v1alpha1.NodeFlowReport){later(time.Duration(v1alpha1.ReportStaleIntervals+1) * 10 * time.Second)},
			[]string{"shop/orders", "shop/payments", "shop/cart", "denied-into-pod:bank/vault-0"}},
		{"another interval: everyone", []func(*v1alpha1.NodeFlowReport){func(r *v1alpha1.NodeFlowReport) { r.Spec.IntervalSeconds = 1 }},
			[]string{"shop/orders", "shop/payments", "shop/cart", "denied-into-pod:bank/vault-0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := base()
			for _, f := range tt.change {
				f(cur)
			}
			got := changedReportKeys(base(), cur)
			if !slices.Equal(got, tt.want) {
				t.Errorf("changed keys %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReportIntents: a report is indexed under the intents it programmed
// and those named by its ingress flows, each once; an egress flow names no
// intent (the same connection's ingress side names the target's), but one
// the source's egress policy dropped is indexed under its destination's
// namespace, whose intents may list it as an undeclared caller. Such a flow
// wakes only the intents whose target selects the destination pod.
func TestReportIntents(t *testing.T) {
	r := &v1alpha1.NodeFlowReport{Spec: v1alpha1.NodeFlowReportSpec{
		Intents: []v1alpha1.ProgrammedIntent{{Namespace: "shop", Name: "orders"}},
		Flows: []v1alpha1.FlowRecord{
			{Direction: v1alpha1.FlowIngress, Intents: []string{"shop/orders", "shop/payments"}},
			{Direction: v1alpha1.FlowEgress, Verdict: v1alpha1.VerdictAllowed, Intents: []string{"risk/fraud"}},
			{Direction: v1alpha1.FlowIngress, Intents: []string{"bad-key"}},
			{Direction: v1alpha1.FlowEgress, Verdict: v1alpha1.VerdictDropped, Destination: v1alpha1.FlowEndpoint{Namespace: "bank", Pod: "vault-0"}},
			{Direction: v1alpha1.FlowEgress, Verdict: v1alpha1.VerdictDropped, Destination: v1alpha1.FlowEndpoint{Namespace: "bank", Pod: "gone-0"}},
		},
	}}
	if got, want := reportIntents(r), []string{"shop/orders", "shop/payments", "bad-key", "denied-into:bank"}; !slices.Equal(got, want) {
		t.Errorf("index keys %v, want %v", got, want)
	}
	wake := reportWakeKeys(r)
	if want := []string{"shop/orders", "shop/payments", "bad-key", "denied-into-pod:bank/vault-0", "denied-into-pod:bank/gone-0"}; !slices.Equal(wake, want) {
		t.Errorf("wake keys %v, want %v", wake, want)
	}
	rec := &Reconciler{Client: podReader{pods: map[client.ObjectKey]map[string]string{
		{Namespace: "bank", Name: "vault-0"}: {"app": "vault"},
	}}}
	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	rec.targets.set(client.ObjectKey{Namespace: "bank", Name: "vault"}, sel("vault"))
	rec.targets.set(client.ObjectKey{Namespace: "bank", Name: "ledger"}, sel("ledger"))
	var got []string
	for _, req := range rec.intentsOfReportKeys(context.Background(), wake) {
		got = append(got, req.String())
	}
	// Not bank/ledger (its target does not select vault-0), nothing for the
	// pod that is gone or the malformed key.
	if want := []string{"shop/orders", "shop/payments", "bank/vault"}; !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

// podReader is a client that finds only its pods, with their labels.
type podReader struct {
	client.Client
	pods map[client.ObjectKey]map[string]string
}

func (r podReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	l, ok := r.pods[key]
	p, isPod := obj.(*corev1.Pod)
	if !ok || !isPod {
		return apierrors.NewNotFound(corev1.Resource("pods"), key.Name)
	}
	p.Namespace, p.Name, p.Labels = key.Namespace, key.Name, l
	return nil
}
