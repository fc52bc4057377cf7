package hubble

import (
	"net/netip"
	"time"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/flows"
)

var t0 = time.Date(2026, 8, 1, 12, 0, 0, 123456789, time.UTC)

func web(ip string) flows.Endpoint {
	return flows.Endpoint{
		IP: netip.MustParseAddr(ip), Namespace: "shop", Pod: "web-7d4b9c-abcde", Node: "node-a",
		WorkloadKind: "Deployment", WorkloadName: "web",
		Labels: map[string]string{"app": "web", "tier": "front"},
	}
}

func api(ip string) flows.Endpoint {
	return flows.Endpoint{
		IP: netip.MustParseAddr(ip), Namespace: "shop", Pod: "api-0", Node: "node-a",
		WorkloadKind: "StatefulSet", WorkloadName: "api",
		Labels: map[string]string{"app": "api"},
	}
}

func billing(ip string) flows.Endpoint {
	return flows.Endpoint{
		IP: netip.MustParseAddr(ip), Namespace: "billing", Pod: "ledger-5f6d7-xyz12", Node: "node-b",
		WorkloadKind: "Deployment", WorkloadName: "ledger",
		Labels: map[string]string{"app": "ledger"},
	}
}

func peer(ip string) flows.Endpoint { return flows.Endpoint{IP: netip.MustParseAddr(ip)} }

// fixtures are the named flows the tests use, in observation order.
var fixtures = []struct {
	name string
	flow flows.Flow
}{
	{"web-to-api-allowed", flows.Flow{
		Time: t0, Node: "node-a", Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictAllowed,
		Protocol: 6, Source: web("10.0.1.5"), Destination: api("10.0.1.9"), SourcePort: 40000, DestinationPort: 8080,
		Policies: []string{"shop/api-allow"}, Intents: []string{"shop/api"},
	}},
	{"ledger-to-api-dropped", flows.Flow{
		Time: t0.Add(time.Second), Node: "node-a", Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictDropped,
		Protocol: 6, Source: billing("10.0.2.7"), Destination: api("10.0.1.9"), SourcePort: 41000, DestinationPort: 8080,
		Policies: []string{"shop/api-allow", "shop/default-deny"}, Intents: []string{"shop/api"},
	}},
	{"web-to-dns-egress-udp", flows.Flow{
		Time: t0.Add(2 * time.Second), Node: "node-a", Direction: v1alpha1.FlowEgress, Verdict: v1alpha1.VerdictAllowed,
		Protocol: 17, Source: web("10.0.1.5"), Destination: peer("10.96.0.10"), SourcePort: 53000, DestinationPort: 53,
		Policies: []string{"shop/web-egress"}, Intents: []string{"shop/web"},
	}},
	{"external-to-api-audited", flows.Flow{
		Time: t0.Add(3 * time.Second), Node: "node-a", Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictAudited,
		Protocol: 132, Source: peer("192.0.2.44"), Destination: api("10.0.1.9"), SourcePort: 5000, DestinationPort: 9000,
		Policies: []string{"audit:shop/api-allow"}, Intents: []string{"shop/api"},
	}},
	{"web-to-v6-egress-dropped", flows.Flow{
		Time: t0.Add(4 * time.Second), Node: "node-a", Direction: v1alpha1.FlowEgress, Verdict: v1alpha1.VerdictDropped,
		Protocol: 6, Source: web("fd00::5"), Destination: peer("2001:db8::1"), SourcePort: 42000, DestinationPort: 443,
		Policies: []string{"shop/web-egress"}, Intents: []string{"shop/web"},
	}},
	{"api-ping-ledger-icmp", flows.Flow{
		Time: t0.Add(5 * time.Second), Node: "node-b", Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictAllowed,
		Protocol: 1, Source: api("10.0.1.9"), Destination: billing("10.0.2.7"),
		Policies: []string{"billing/ledger-allow"}, Intents: []string{"billing/ledger"},
	}},
}

// fixtureNames lists the names of the fixtures at the given indexes.
func fixtureNames(idx ...int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, fixtures[i].name)
	}
	return out
}

// filledBuffer returns a buffer holding every fixture.
func filledBuffer(capacity int) *Buffer {
	b := NewBuffer(capacity)
	for i := range fixtures {
		b.Observe(&fixtures[i].flow)
	}
	return b
}
