package flowlog

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/verdictlog"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

func state(pols, audit []*networkingv1.NetworkPolicy) *policy.State {
	st := policy.Compute(policy.Input{
		NodeName:      pt.Node,
		Namespaces:    []policy.Namespace{pt.Namespace("x", nil)},
		Pods:          []policy.Pod{pt.Pod("x", "a", pt.Node, map[string]string{"app": "a"}, "10.1.0.1", "fd00::1")},
		Policies:      pols,
		AuditPolicies: audit,
	})
	return &st
}

func TestEventDecoding(t *testing.T) {
	web := pt.Policy("x", "web", pt.IngressRule(nil, pt.TCP(80)))
	st := state([]*networkingv1.NetworkPolicy{web}, nil)
	auditSt := state(nil, []*networkingv1.NetworkPolicy{web})
	now := time.Unix(1000, 0)
	tcp := ipv4(6, "10.9.0.9", "10.1.0.1", false, 0, ports4(40000, 80))
	udp6 := ipv6(17, "fd00::9", "fd00::1", ports4(5000, 53))
	allowIn := verdictlog.Prefix(policy.LogAllowed, policy.Ingress, []string{"x/web"})
	dropIn := verdictlog.Prefix(policy.LogDropped, policy.Ingress, []string{"x/web"})
	auditIn := verdictlog.Prefix(policy.LogAudited, policy.Ingress, []string{"audit:x/web"})

	tests := []struct {
		name   string
		states []*policy.State // updates, in order
		at     time.Time
		msg    logMessage
		want   Event
		ok     bool
	}{
		{"allowed", []*policy.State{st}, now, logMessage{Prefix: allowIn, Payload: tcp, Time: time.Unix(5, 0)},
			Event{Time: time.Unix(5, 0), Verdict: policy.LogAllowed, Direction: policy.Ingress, Protocol: 6,
				Src: netip.MustParseAddr("10.9.0.9"), Dst: netip.MustParseAddr("10.1.0.1"), SrcPort: 40000, DstPort: 80, Policies: []string{"x/web"}}, true},
		{"dropped ipv6, no kernel timestamp", []*policy.State{st}, now, logMessage{Prefix: dropIn, Payload: udp6},
			Event{Time: now, Verdict: policy.LogDropped, Direction: policy.Ingress, Protocol: 17,
				Src: netip.MustParseAddr("fd00::9"), Dst: netip.MustParseAddr("fd00::1"), SrcPort: 5000, DstPort: 53, Policies: []string{"x/web"}}, true},
		{"audited", []*policy.State{auditSt}, now, logMessage{Prefix: auditIn, Payload: tcp},
			Event{Time: now, Verdict: policy.LogAudited, Direction: policy.Ingress, Protocol: 6,
				Src: netip.MustParseAddr("10.9.0.9"), Dst: netip.MustParseAddr("10.1.0.1"), SrcPort: 40000, DstPort: 80, Policies: []string{"audit:x/web"}}, true},
		{"previous state within the grace period", []*policy.State{st, auditSt}, now.Add(30 * time.Second), logMessage{Prefix: dropIn, Payload: tcp},
			Event{Time: now.Add(30 * time.Second), Verdict: policy.LogDropped, Direction: policy.Ingress, Protocol: 6,
				Src: netip.MustParseAddr("10.9.0.9"), Dst: netip.MustParseAddr("10.1.0.1"), SrcPort: 40000, DstPort: 80, Policies: []string{"x/web"}}, true},
		{"previous state after the grace period: verdict without policies", []*policy.State{st, auditSt}, now.Add(2 * time.Minute), logMessage{Prefix: dropIn, Payload: tcp},
			Event{Time: now.Add(2 * time.Minute), Verdict: policy.LogDropped, Direction: policy.Ingress, Protocol: 6,
				Src: netip.MustParseAddr("10.9.0.9"), Dst: netip.MustParseAddr("10.1.0.1"), SrcPort: 40000, DstPort: 80}, true},
		{"foreign prefix", []*policy.State{st}, now, logMessage{Prefix: "someone else", Payload: tcp}, Event{}, false},
		{"bad packet", []*policy.State{st}, now, logMessage{Prefix: allowIn, Payload: []byte{0x45}}, Event{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := prefixTable{grace: time.Minute}
			for _, s := range tc.states {
				tb.update(s, now)
			}
			got, ok := tb.event(tc.msg, tc.at)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
