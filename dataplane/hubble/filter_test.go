package hubble

import (
	"slices"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Fixture indexes, for reading the tables below.
const (
	webToAPI = iota
	ledgerToAPIDropped
	webToDNS
	externalAudited
	webToV6Dropped
	apiPingLedger
)

var all = []int{webToAPI, ledgerToAPIDropped, webToDNS, externalAudited, webToV6Dropped, apiPingLedger}

// filterCases are GetFlows requests over the fixtures and the fixtures each
// selects; filter_test runs them on the selection logic, server_test through
// gRPC.
var filterCases = []struct {
	name string
	req  *observerpb.GetFlowsRequest
	want []int
}{
	{"no filter", &observerpb.GetFlowsRequest{}, all},
	{"empty filter", wl(&flowpb.FlowFilter{}), all},
	{"source namespace", wl(&flowpb.FlowFilter{SourcePod: []string{"shop/"}}), []int{webToAPI, webToDNS, webToV6Dropped, apiPingLedger}},
	{"source pod prefix", wl(&flowpb.FlowFilter{SourcePod: []string{"shop/web"}}), []int{webToAPI, webToDNS, webToV6Dropped}},
	{"pod without namespace is in default", wl(&flowpb.FlowFilter{SourcePod: []string{"web"}}), nil},
	{"pod prefix in any namespace", wl(&flowpb.FlowFilter{SourcePod: []string{"/ledger"}}), []int{ledgerToAPIDropped}},
	{"all namespaces", wl(&flowpb.FlowFilter{SourcePod: []string{"/"}}), all},
	{"destination namespace", wl(&flowpb.FlowFilter{DestinationPod: []string{"billing/"}}), []int{apiPingLedger}},
	{"pods are ORed", wl(&flowpb.FlowFilter{DestinationPod: []string{"billing/", "shop/api-"}}), []int{webToAPI, ledgerToAPIDropped, externalAudited, apiPingLedger}},
	{"source ip", wl(&flowpb.FlowFilter{SourceIp: []string{"10.0.1.5"}}), []int{webToAPI, webToDNS}},
	{"source cidr", wl(&flowpb.FlowFilter{SourceIp: []string{"10.0.0.0/16"}}), []int{webToAPI, ledgerToAPIDropped, webToDNS, apiPingLedger}},
	{"destination v6 cidr", wl(&flowpb.FlowFilter{DestinationIp: []string{"2001:db8::/32"}}), []int{webToV6Dropped}},
	{"destination ip of a non-pod", wl(&flowpb.FlowFilter{DestinationIp: []string{"10.96.0.10"}}), []int{webToDNS}},
	{"source label", wl(&flowpb.FlowFilter{SourceLabel: []string{"app=web"}}), []int{webToAPI, webToDNS, webToV6Dropped}},
	{"source label with source", wl(&flowpb.FlowFilter{SourceLabel: []string{"k8s:app==web"}}), []int{webToAPI, webToDNS, webToV6Dropped}},
	{"label of another source", wl(&flowpb.FlowFilter{SourceLabel: []string{"reserved:app=web"}}), nil},
	{"label not equal", wl(&flowpb.FlowFilter{SourceLabel: []string{"app!=web"}}), []int{ledgerToAPIDropped, externalAudited, apiPingLedger}},
	{"label terms are ANDed", wl(&flowpb.FlowFilter{SourceLabel: []string{"app=web,tier=front"}}), []int{webToAPI, webToDNS, webToV6Dropped}},
	{"label existence", wl(&flowpb.FlowFilter{DestinationLabel: []string{"app,!tier"}}), []int{webToAPI, ledgerToAPIDropped, externalAudited, apiPingLedger}},
	{"namespace label", wl(&flowpb.FlowFilter{DestinationLabel: []string{"io.kubernetes.pod.namespace=billing"}}), []int{apiPingLedger}},
	{"verdict", wl(&flowpb.FlowFilter{Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}}), []int{ledgerToAPIDropped, webToV6Dropped}},
	{"verdicts", wl(&flowpb.FlowFilter{Verdict: []flowpb.Verdict{flowpb.Verdict_AUDIT, flowpb.Verdict_DROPPED}}), []int{ledgerToAPIDropped, externalAudited, webToV6Dropped}},
	{"drop reason", wl(&flowpb.FlowFilter{DropReasonDesc: []flowpb.DropReason{flowpb.DropReason_POLICY_DENIED}}), []int{ledgerToAPIDropped, webToV6Dropped}},
	{"protocol tcp", wl(&flowpb.FlowFilter{Protocol: []string{"tcp"}}), []int{webToAPI, ledgerToAPIDropped, webToV6Dropped}},
	{"protocol UDP", wl(&flowpb.FlowFilter{Protocol: []string{"UDP"}}), []int{webToDNS}},
	{"protocol sctp or icmp", wl(&flowpb.FlowFilter{Protocol: []string{"sctp", "icmp"}}), []int{externalAudited, apiPingLedger}},
	{"protocol http (L7)", wl(&flowpb.FlowFilter{Protocol: []string{"http"}}), nil},
	{"destination port", wl(&flowpb.FlowFilter{DestinationPort: []string{"8080"}}), []int{webToAPI, ledgerToAPIDropped}},
	{"sctp destination port", wl(&flowpb.FlowFilter{DestinationPort: []string{"9000"}}), []int{externalAudited}},
	{"source port", wl(&flowpb.FlowFilter{SourcePort: []string{"53000"}}), []int{webToDNS}},
	{"traffic direction", wl(&flowpb.FlowFilter{TrafficDirection: []flowpb.TrafficDirection{flowpb.TrafficDirection_EGRESS}}), []int{webToDNS, webToV6Dropped}},
	{"node name", wl(&flowpb.FlowFilter{NodeName: []string{"node-b"}}), []int{apiPingLedger}},
	{"node name pattern", wl(&flowpb.FlowFilter{NodeName: []string{"node-*"}}), all},
	{"node name with cluster", wl(&flowpb.FlowFilter{NodeName: []string{"default/node-a"}}), []int{webToAPI, ledgerToAPIDropped, webToDNS, externalAudited, webToV6Dropped}},
	{"event type drop", wl(&flowpb.FlowFilter{EventType: []*flowpb.EventTypeFilter{{Type: 1}}}), []int{ledgerToAPIDropped, webToV6Dropped}},
	{"event type policy verdict", wl(&flowpb.FlowFilter{EventType: []*flowpb.EventTypeFilter{{Type: 5}}}), []int{webToAPI, webToDNS, externalAudited, apiPingLedger}},
	{"event sub type", wl(&flowpb.FlowFilter{EventType: []*flowpb.EventTypeFilter{{Type: 1, MatchSubType: true, SubType: 134}}}), nil},
	{"ip version", wl(&flowpb.FlowFilter{IpVersion: []flowpb.IPVersion{flowpb.IPVersion_IPv6}}), []int{webToV6Dropped}},
	{"source workload", wl(&flowpb.FlowFilter{SourceWorkload: []*flowpb.Workload{{Name: "web"}}}), []int{webToAPI, webToDNS, webToV6Dropped}},
	{"destination workload kind", wl(&flowpb.FlowFilter{DestinationWorkload: []*flowpb.Workload{{Kind: "StatefulSet"}}}), []int{webToAPI, ledgerToAPIDropped, externalAudited}},
	{"tcp flags", wl(&flowpb.FlowFilter{TcpFlags: []*flowpb.TCPFlags{{SYN: true}}}), []int{webToAPI, ledgerToAPIDropped, webToV6Dropped}},
	{"tcp flags not set", wl(&flowpb.FlowFilter{TcpFlags: []*flowpb.TCPFlags{{SYN: true, ACK: true}}}), nil},
	{"reply false", wl(&flowpb.FlowFilter{Reply: []bool{false}}), all},
	{"reply true", wl(&flowpb.FlowFilter{Reply: []bool{true}}), nil},
	{"fields of one filter are ANDed", wl(&flowpb.FlowFilter{SourcePod: []string{"shop/"}, Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}}), []int{webToV6Dropped}},
	{"filters are ORed", wl(&flowpb.FlowFilter{Verdict: []flowpb.Verdict{flowpb.Verdict_AUDIT}}, &flowpb.FlowFilter{NodeName: []string{"node-b"}}), []int{externalAudited, apiPingLedger}},
	{"field Palisade never fills selects nothing", wl(&flowpb.FlowFilter{DestinationFqdn: []string{"example.com"}}), nil},
	{"blacklist", &observerpb.GetFlowsRequest{Blacklist: []*flowpb.FlowFilter{{Verdict: []flowpb.Verdict{flowpb.Verdict_FORWARDED}}}}, []int{ledgerToAPIDropped, externalAudited, webToV6Dropped}},
	{"blacklist filters are ORed", &observerpb.GetFlowsRequest{Blacklist: []*flowpb.FlowFilter{
		{Verdict: []flowpb.Verdict{flowpb.Verdict_FORWARDED}}, {Protocol: []string{"sctp"}}}}, []int{ledgerToAPIDropped, webToV6Dropped}},
	{"whitelist minus blacklist", &observerpb.GetFlowsRequest{
		Whitelist: []*flowpb.FlowFilter{{SourcePod: []string{"shop/web"}}},
		Blacklist: []*flowpb.FlowFilter{{Protocol: []string{"udp"}}}}, []int{webToAPI, webToV6Dropped}},
	{"blacklist on a field Palisade never fills excludes nothing", &observerpb.GetFlowsRequest{
		Blacklist: []*flowpb.FlowFilter{{SourceService: []string{"shop/web"}}}}, all},
	{"last 2", &observerpb.GetFlowsRequest{Number: 2}, []int{webToV6Dropped, apiPingLedger}},
	{"last 2 that match", &observerpb.GetFlowsRequest{Number: 2, Whitelist: []*flowpb.FlowFilter{{Protocol: []string{"tcp"}}}}, []int{ledgerToAPIDropped, webToV6Dropped}},
	{"first 2", &observerpb.GetFlowsRequest{Number: 2, First: true}, []int{webToAPI, ledgerToAPIDropped}},
	{"more than held", &observerpb.GetFlowsRequest{Number: 100}, all},
	{"since", &observerpb.GetFlowsRequest{Since: timestamppb.New(t0.Add(4 * time.Second))}, []int{webToV6Dropped, apiPingLedger}},
	{"until", &observerpb.GetFlowsRequest{Until: timestamppb.New(t0.Add(time.Second))}, []int{webToAPI, ledgerToAPIDropped}},
	{"since and until", &observerpb.GetFlowsRequest{Since: timestamppb.New(t0.Add(time.Second)), Until: timestamppb.New(t0.Add(2 * time.Second))}, []int{ledgerToAPIDropped, webToDNS}},
}

// invalidRequests must be refused with InvalidArgument.
var invalidRequests = []struct {
	name string
	req  *observerpb.GetFlowsRequest
}{
	{"bad ip", wl(&flowpb.FlowFilter{SourceIp: []string{"10.0.0.300"}})},
	{"bad cidr", wl(&flowpb.FlowFilter{DestinationIp: []string{"10.0.0.0/40"}})},
	{"bad port", wl(&flowpb.FlowFilter{DestinationPort: []string{"70000"}})},
	{"unknown protocol", wl(&flowpb.FlowFilter{Protocol: []string{"carrier-pigeon"}})},
	{"set-based label selector", wl(&flowpb.FlowFilter{SourceLabel: []string{"app in (a,b)"}})},
	{"empty label term", wl(&flowpb.FlowFilter{SourceLabel: []string{"app=a,"}})},
	{"bad node pattern", wl(&flowpb.FlowFilter{NodeName: []string{"node-["}})},
	{"cel", wl(&flowpb.FlowFilter{Experimental: &flowpb.FlowFilter_Experimental{CelExpression: []string{"true"}}})},
	{"bad blacklist", &observerpb.GetFlowsRequest{Blacklist: []*flowpb.FlowFilter{{SourcePort: []string{"x"}}}}},
	{"first with follow", &observerpb.GetFlowsRequest{First: true, Follow: true}},
	{"invalid since", &observerpb.GetFlowsRequest{Since: &timestamppb.Timestamp{Nanos: -1}}},
	{"field mask on an unknown field", &observerpb.GetFlowsRequest{FieldMask: &fieldmaskpb.FieldMask{Paths: []string{"source.no_such_field"}}}},
}

func wl(ff ...*flowpb.FlowFilter) *observerpb.GetFlowsRequest {
	return &observerpb.GetFlowsRequest{Whitelist: ff}
}

// nameOf tells which fixture a flow came from (each has its own time).
func nameOf(f *flowpb.Flow) string {
	for _, fx := range fixtures {
		if f.GetTime().AsTime().Equal(fx.flow.Time) {
			return fx.name
		}
	}
	return "unknown flow at " + f.GetTime().AsTime().String()
}

func TestSelection(t *testing.T) {
	held, _ := filledBuffer(0).snapshot(false)
	for _, tc := range filterCases {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := newSelection(tc.req)
			if err != nil {
				t.Fatalf("newSelection: %v", err)
			}
			var got []string
			for _, f := range sel.backlog(held) {
				got = append(got, nameOf(f))
			}
			if want := fixtureNames(tc.want...); !slices.Equal(got, want) {
				t.Errorf("selected %v, want %v", got, want)
			}
		})
	}
}

func TestSelectionRejectsInvalidRequests(t *testing.T) {
	for _, tc := range invalidRequests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newSelection(tc.req); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestFollowWithoutNumberStartsWithNewFlows(t *testing.T) {
	held, _ := filledBuffer(0).snapshot(false)
	sel, err := newSelection(&observerpb.GetFlowsRequest{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := sel.backlog(held); len(got) != 0 {
		t.Errorf("backlog of %d flows, want none", len(got))
	}
	sel, err = newSelection(&observerpb.GetFlowsRequest{Follow: true, Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := sel.backlog(held); len(got) != 1 || nameOf(got[0]) != fixtures[apiPingLedger].name {
		t.Errorf("backlog %v, want the last flow", got)
	}
}
