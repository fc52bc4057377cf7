package flows

import (
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/flowlog"
	"github.com/palisade-dev/palisade/internal/policy"
)

func pod(ns, name, node string, phase corev1.PodPhase, labels map[string]string, owners []metav1.OwnerReference, ips ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, OwnerReferences: owners},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: phase},
	}
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	return p
}

func TestAttribute(t *testing.T) {
	web := pod("shop", "web-abc-1", "n1", corev1.PodRunning, map[string]string{"app": "web", "pod-template-hash": "abc"},
		[]metav1.OwnerReference{owner("ReplicaSet", "web-abc", true)}, "10.0.0.1", "fd00::1")
	db := pod("shop", "db-0", "n2", corev1.PodRunning, map[string]string{"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"},
		[]metav1.OwnerReference{owner("StatefulSet", "db", true)}, "10.0.0.2")
	oldJob := pod("shop", "old", "n1", corev1.PodSucceeded, nil, []metav1.OwnerReference{owner("Job", "j", true)}, "10.0.0.3")
	reuse := pod("shop", "new", "n1", corev1.PodRunning, map[string]string{"app": "new"}, nil, "10.0.0.3")
	host := pod("kube-system", "proxy", "n1", corev1.PodRunning, nil, nil, "192.168.0.1")
	host.Spec.HostNetwork = true
	intents := map[string]string{
		"shop/db-ingress":        "shop/db",
		"audit:shop/web-ingress": "shop/web",
	}
	// The finished pod comes after the live one that reused its address.
	ix := NewIndex("n1", []*corev1.Pod{web, db, reuse, oldJob, host}, intents)
	now := time.Unix(1000, 0)

	cases := []struct {
		name string
		ev   flowlog.Event
		want Flow
	}{
		{
			name: "pod to pod, enforce policy with intent",
			ev: flowlog.Event{Time: now, Verdict: policy.LogAllowed, Direction: policy.Ingress, Protocol: 6,
				Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000, DstPort: 5432,
				Policies: []string{"shop/db-ingress"}},
			want: Flow{Time: now, Node: "n1", Verdict: v1alpha1.VerdictAllowed, Direction: v1alpha1.FlowIngress, Protocol: 6,
				Source: Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Namespace: "shop", Pod: "web-abc-1", Node: "n1",
					WorkloadKind: KindDeployment, WorkloadName: "web", Labels: map[string]string{"app": "web"}},
				Destination: Endpoint{IP: netip.MustParseAddr("10.0.0.2"), Namespace: "shop", Pod: "db-0", Node: "n2",
					WorkloadKind: KindStatefulSet, WorkloadName: "db", Labels: map[string]string{"app": "db"}},
				SourcePort: 40000, DestinationPort: 5432, Policies: []string{"shop/db-ingress"}, Intents: []string{"shop/db"}},
		},
		{
			name: "external source, audit policy, policy without intent, v6 mapped address",
			ev: flowlog.Event{Time: now, Verdict: policy.LogAudited, Direction: policy.Ingress, Protocol: 17,
				Src: netip.MustParseAddr("203.0.113.9"), Dst: netip.MustParseAddr("::ffff:10.0.0.1"), DstPort: 53,
				Policies: []string{"shop/other", "audit:shop/web-ingress", "shop/other"}},
			want: Flow{Time: now, Node: "n1", Verdict: v1alpha1.VerdictAudited, Direction: v1alpha1.FlowIngress, Protocol: 17,
				Source: Endpoint{IP: netip.MustParseAddr("203.0.113.9")},
				Destination: Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Namespace: "shop", Pod: "web-abc-1", Node: "n1",
					WorkloadKind: KindDeployment, WorkloadName: "web", Labels: map[string]string{"app": "web"}},
				DestinationPort: 53, Policies: []string{"shop/other", "shop/web-ingress"}, Intents: []string{"shop/web"}},
		},
		{
			name: "reused address is the live pod's; host network pods are not pods",
			ev: flowlog.Event{Time: now, Verdict: policy.LogDropped, Direction: policy.Egress, Protocol: 6,
				Src: netip.MustParseAddr("10.0.0.3"), Dst: netip.MustParseAddr("192.168.0.1"), DstPort: 443},
			want: Flow{Time: now, Node: "n1", Verdict: v1alpha1.VerdictDropped, Direction: v1alpha1.FlowEgress, Protocol: 6,
				Source: Endpoint{IP: netip.MustParseAddr("10.0.0.3"), Namespace: "shop", Pod: "new", Node: "n1",
					WorkloadKind: KindPod, WorkloadName: "new", Labels: map[string]string{"app": "new"}},
				Destination: Endpoint{IP: netip.MustParseAddr("192.168.0.1")}, DestinationPort: 443},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ix.Attribute(c.ev)
			if !flowEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
	// Order of the pod list does not matter for reused addresses.
	ix2 := NewIndex("n1", []*corev1.Pod{oldJob, reuse}, nil)
	if got := ix2.Pod(netip.MustParseAddr("10.0.0.3")); got.Pod != "new" {
		t.Errorf("finished pod listed first won the address: %+v", got)
	}
	var nilIx *Index
	if got := nilIx.Attribute(flowlog.Event{Src: netip.MustParseAddr("10.0.0.1"), Policies: []string{"audit:a/b"}}); got.Source.IsPod() || !slices.Equal(got.Policies, []string{"a/b"}) {
		t.Errorf("nil index: %+v", got)
	}
}

func flowEqual(a, b Flow) bool {
	epEq := func(x, y Endpoint) bool {
		return x.IP == y.IP && x.Namespace == y.Namespace && x.Pod == y.Pod && x.Node == y.Node &&
			x.WorkloadKind == y.WorkloadKind && x.WorkloadName == y.WorkloadName && maps.Equal(x.Labels, y.Labels)
	}
	return a.Time.Equal(b.Time) && a.Node == b.Node && a.Verdict == b.Verdict && a.Direction == b.Direction &&
		a.Protocol == b.Protocol && a.SourcePort == b.SourcePort && a.DestinationPort == b.DestinationPort &&
		epEq(a.Source, b.Source) && epEq(a.Destination, b.Destination) &&
		slices.Equal(a.Policies, b.Policies) && slices.Equal(a.Intents, b.Intents)
}
