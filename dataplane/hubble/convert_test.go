package hubble

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/flows"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// stableJSON renders a flow as protojson does for `hubble observe -o json`,
// with whitespace normalised: protojson randomises it on purpose.
func stableJSON(t *testing.T, f *flowpb.Flow) []byte {
	t.Helper()
	raw, err := protojson.Marshal(f)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		t.Fatalf("indent: %v", err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func TestToProtoGolden(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			got := stableJSON(t, ToProto(&fx.flow))
			path := filepath.Join("testdata", fx.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
			// The golden JSON must read back as the same flow, as a
			// Hubble client decoding it would.
			var back flowpb.Flow
			if err := protojson.Unmarshal(want, &back); err != nil {
				t.Fatalf("golden file is not a flow.Flow: %v", err)
			}
		})
	}
}

func TestToProtoVerdicts(t *testing.T) {
	base := flows.Flow{Time: t0, Protocol: 6, Source: web("10.0.1.5"), Destination: api("10.0.1.9"), DestinationPort: 80}
	tests := []struct {
		verdict   v1alpha1.FlowVerdict
		dir       v1alpha1.FlowDirection
		policies  []string
		want      flowpb.Verdict
		eventType int32
		dropDesc  flowpb.DropReason
		// wantAllowed and wantDenied are the policies expected in the
		// list of the flow's direction ("ns/name (kind)").
		wantAllowed, wantDenied []string
	}{
		{v1alpha1.VerdictAllowed, v1alpha1.FlowIngress, []string{"shop/a"}, flowpb.Verdict_FORWARDED, 5, 0,
			[]string{"shop/a (NetworkPolicy)"}, nil},
		{v1alpha1.VerdictAllowed, v1alpha1.FlowEgress, []string{"shop/a"}, flowpb.Verdict_FORWARDED, 5, 0,
			[]string{"shop/a (NetworkPolicy)"}, nil},
		{v1alpha1.VerdictDropped, v1alpha1.FlowIngress, []string{"shop/a", "shop/b"}, flowpb.Verdict_DROPPED, 1, flowpb.DropReason_POLICY_DENIED,
			nil, []string{"shop/a (NetworkPolicy)", "shop/b (NetworkPolicy)"}},
		{v1alpha1.VerdictDropped, v1alpha1.FlowEgress, nil, flowpb.Verdict_DROPPED, 1, flowpb.DropReason_POLICY_DENIED,
			nil, nil},
		{v1alpha1.VerdictAudited, v1alpha1.FlowEgress, []string{"audit:shop/a"}, flowpb.Verdict_AUDIT, 5, 0,
			nil, []string{"shop/a (AuditNetworkPolicy)"}},
	}
	render := func(ps []*flowpb.Policy) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.GetNamespace()+"/"+p.GetName()+" ("+p.GetKind()+")")
		}
		return out
	}
	for _, tc := range tests {
		t.Run(string(tc.verdict)+"-"+string(tc.dir), func(t *testing.T) {
			f := base
			f.Verdict, f.Direction, f.Policies = tc.verdict, tc.dir, tc.policies
			got := ToProto(&f)
			if got.GetVerdict() != tc.want || got.GetEventType().GetType() != tc.eventType || got.GetDropReasonDesc() != tc.dropDesc {
				t.Errorf("verdict %v event type %d drop reason %v, want %v %d %v",
					got.GetVerdict(), got.GetEventType().GetType(), got.GetDropReasonDesc(), tc.want, tc.eventType, tc.dropDesc)
			}
			allowed, denied := got.GetIngressAllowedBy(), got.GetIngressDeniedBy()
			other := len(got.GetEgressAllowedBy()) + len(got.GetEgressDeniedBy())
			wantDir := flowpb.TrafficDirection_INGRESS
			if tc.dir == v1alpha1.FlowEgress {
				allowed, denied = got.GetEgressAllowedBy(), got.GetEgressDeniedBy()
				other = len(got.GetIngressAllowedBy()) + len(got.GetIngressDeniedBy())
				wantDir = flowpb.TrafficDirection_EGRESS
			}
			if got.GetTrafficDirection() != wantDir {
				t.Errorf("direction %v, want %v", got.GetTrafficDirection(), wantDir)
			}
			if !slices.Equal(render(allowed), tc.wantAllowed) || !slices.Equal(render(denied), tc.wantDenied) || other != 0 {
				t.Errorf("allowed by %v denied by %v (+%d in the other direction), want %v and %v",
					render(allowed), render(denied), other, tc.wantAllowed, tc.wantDenied)
			}
		})
	}
}

func TestToProtoLayer4(t *testing.T) {
	tests := []struct {
		proto   uint8
		want    string // the Layer4 case set
		summary string
	}{
		{6, "TCP", "TCP Flags: SYN"},
		{17, "UDP", "UDP"},
		{132, "SCTP", "SCTP"},
		{1, "ICMPv4", "ICMPv4"},
		{58, "ICMPv6", "ICMPv6"},
		{47, "", ""},
	}
	for _, tc := range tests {
		f := flows.Flow{Time: t0, Verdict: v1alpha1.VerdictAllowed, Protocol: tc.proto, SourcePort: 1000, DestinationPort: 80,
			Source: peer("10.0.0.1"), Destination: peer("10.0.0.2")}
		got := ToProto(&f)
		var have string
		switch l4 := got.GetL4().GetProtocol().(type) {
		case *flowpb.Layer4_TCP:
			have = "TCP"
			if !l4.TCP.GetFlags().GetSYN() || l4.TCP.GetDestinationPort() != 80 || l4.TCP.GetSourcePort() != 1000 {
				t.Errorf("TCP: %v", l4.TCP)
			}
		case *flowpb.Layer4_UDP:
			have = "UDP"
			if l4.UDP.GetDestinationPort() != 80 {
				t.Errorf("UDP: %v", l4.UDP)
			}
		case *flowpb.Layer4_SCTP:
			have = "SCTP"
			if l4.SCTP.GetDestinationPort() != 80 {
				t.Errorf("SCTP: %v", l4.SCTP)
			}
		case *flowpb.Layer4_ICMPv4:
			have = "ICMPv4"
		case *flowpb.Layer4_ICMPv6:
			have = "ICMPv6"
		}
		if have != tc.want || got.GetSummary() != tc.summary {
			t.Errorf("protocol %d: L4 %q summary %q, want %q %q", tc.proto, have, got.GetSummary(), tc.want, tc.summary)
		}
	}
}

func TestToProtoAddresses(t *testing.T) {
	tests := []struct {
		src, dst         string
		wantSrc, wantDst string
		wantVersion      flowpb.IPVersion
	}{
		{"10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2", flowpb.IPVersion_IPv4},
		// The kernel may hand IPv4 peers of a dual-stack socket as
		// IPv4-mapped IPv6; Hubble shows them as IPv4.
		{"::ffff:10.0.0.1", "::ffff:10.0.0.2", "10.0.0.1", "10.0.0.2", flowpb.IPVersion_IPv4},
		{"fd00::1", "fd00::2", "fd00::1", "fd00::2", flowpb.IPVersion_IPv6},
	}
	for _, tc := range tests {
		f := flows.Flow{Time: t0, Verdict: v1alpha1.VerdictAllowed, Protocol: 6, Source: peer(tc.src), Destination: peer(tc.dst)}
		ip := ToProto(&f).GetIP()
		if ip.GetSource() != tc.wantSrc || ip.GetDestination() != tc.wantDst || ip.GetIpVersion() != tc.wantVersion {
			t.Errorf("%s -> %s: got %v", tc.src, tc.dst, ip)
		}
	}
}
