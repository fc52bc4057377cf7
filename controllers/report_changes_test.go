package controllers

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
				{Direction: v1alpha1.FlowEgress, Verdict: v1alpha1.VerdictDropped, Destination: v1alpha1.FlowEndpoint{Namespace: "bank"}, Count: 1},
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
			[]string{"denied-into:bank"}},
		{"the old report had gone stale: everyone", []func(*v1alpha1.NodeFlowReport){later(time.Duration(v1alpha1.ReportStaleIntervals+1) * 10 * time.Second)},
			[]string{"shop/orders", "shop/payments", "shop/cart", "denied-into:bank"}},
		{"another interval: everyone", []func(*v1alpha1.NodeFlowReport){func(r *v1alpha1.NodeFlowReport) { r.Spec.IntervalSeconds = 1 }},
			[]string{"shop/orders", "shop/payments", "shop/cart", "denied-into:bank"}},
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
