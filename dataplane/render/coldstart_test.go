package render_test

import (
	"net/netip"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/testenv"
)

func TestColdStartGolden(t *testing.T) {
	testenv.Golden(t, filepath.Join("testdata", "cold-start.nft"), render.ColdStart().Text(), *update)
}

// TestColdStartClosesForwardOnly: every new forwarded connection is
// dropped, whatever its addresses, protocol or segment; the input hook
// (the node's own services, reached by pods and by the outside) has no
// chain and passes.
func TestColdStartClosesForwardOnly(t *testing.T) {
	rs := render.ColdStart()
	pod4, pod6 := netip.MustParseAddr("10.100.1.1"), netip.MustParseAddr("fd00:100::1:1")
	packets := []policy.Packet{
		{Src: pod4, Dst: netip.MustParseAddr("10.100.1.2"), Protocol: corev1.ProtocolTCP, Port: 80},
		{Src: pod4, Dst: netip.MustParseAddr("192.0.2.1"), Protocol: corev1.ProtocolUDP, Port: 53},
		{Src: netip.MustParseAddr("192.0.2.1"), Dst: pod4, Protocol: corev1.ProtocolSCTP, Port: 9},
		{Src: pod6, Dst: netip.MustParseAddr("fd00:100::2:1"), Protocol: corev1.ProtocolTCP, Port: 8080},
		{Src: pod4, Dst: netip.MustParseAddr("10.100.2.1"), Protocol: "ICMP"},
	}
	for _, p := range packets {
		for _, seg := range []render.Segment{render.SegmentSYN, render.SegmentMidStream} {
			if pass, logs := rs.TraceSegment(render.HookForward, p, seg); pass || len(logs) > 0 {
				t.Errorf("forward %+v (segment %d): pass=%v logs=%v, want dropped unlogged", p, seg, pass, logs)
			}
		}
		if !rs.Trace(render.HookInput, p) {
			t.Errorf("input %+v dropped: the cold start must leave the node's own traffic alone", p)
		}
	}
	// Established and related packets are accepted before the drop; no
	// other rule precedes it.
	c := rs.Chain(render.ColdStartChain)
	if c == nil || len(c.Rules) != 2 || c.Rules[0].CtState != render.CtEstablishedRelated || c.Rules[0].Verdict != render.Accept {
		t.Fatalf("cold-start chain does not accept established,related first: %+v", c)
	}
	for _, ch := range rs.Chains {
		if ch.IsBase() && ch.Hook != render.HookForward {
			t.Errorf("chain %s hooks %s: the cold start hooks forward only", ch.Name, ch.Hook)
		}
	}
	if len(rs.Sets) != 0 {
		t.Errorf("cold start has sets %v: a full sync would have to diff them", rs.Sets)
	}
}
