package render_test

import (
	"flag"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/internal/testenv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/dataplane/verdictlog"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const node = pt.Node

func cluster(policies ...*networkingv1.NetworkPolicy) policy.Input {
	return pt.ClusterInput(pt.BasePods(), policies...)
}

var goldenCases = map[string][]*networkingv1.NetworkPolicy{
	"empty": nil,
	"deny-all": {
		pt.Policy("x", "deny-all", pt.Types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)),
	},
	"mixed": pt.MixedPolicies(),
}

// goldenAudit: x/a is audit-only (ingress), x/b has an enforce policy and
// an audit policy of the same name, which changes nothing for it.
func goldenAudit() policy.Input {
	in := cluster(pt.Policy("x", "web", pt.Selecting(map[string]string{"app": "b"}), pt.IngressRule(nil, pt.TCP(80))))
	in.AuditPolicies = []*networkingv1.NetworkPolicy{
		pt.Policy("x", "web", pt.Selecting(nil), pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"})), pt.TCP(8080))),
	}
	return in
}

func TestGolden(t *testing.T) {
	inputs := map[string]policy.Input{"audit": goldenAudit()}
	for name, pols := range goldenCases {
		inputs[name] = cluster(pols...)
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			st := policy.Compute(in)
			if len(st.Errors) > 0 {
				t.Fatalf("unexpected errors: %v", st.Errors)
			}
			got := render.Render(&st).Text()
			path := filepath.Join("testdata", name+".nft")
			testenv.Golden(t, path, got, *update)
		})
	}
}

// GoldenRulesets exposes the golden inputs' rulesets so the nft package can
// load them into a kernel.
func TestRenderIsDeterministicAndShared(t *testing.T) {
	pols := goldenCases["mixed"]
	in := cluster(pols...)
	a := policy.Compute(in)
	in.Policies = []*networkingv1.NetworkPolicy{pols[2], pols[1], pols[0]}
	b := policy.Compute(in)
	ra, rb := render.Render(&a), render.Render(&b)
	if !reflect.DeepEqual(ra, rb) {
		t.Fatal("Render depends on input order")
	}
	// Two rules with the same ports share one port set.
	in = cluster(
		pt.Policy("x", "p1", pt.IngressRule(pt.Peers(pt.PodPeer(nil)), pt.TCP(80))),
		pt.Policy("x", "p2", pt.IngressRule(pt.Peers(pt.NamespacePeer(nil)), pt.TCP(80))),
	)
	st := policy.Compute(in)
	rs := render.Render(&st)
	n := 0
	for _, s := range rs.Sets {
		if strings.HasPrefix(s.Name, "ports-") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d port sets, want 1 shared", n)
	}
}

// TestRuleCountIndependentOfPods: adding pods adds set elements, never rules,
// and keeps every rule and set name.
func TestRuleCountIndependentOfPods(t *testing.T) {
	pols := goldenCases["mixed"]
	small := cluster(pols...)
	big := cluster(pols...)
	for i := range 500 {
		ns := []string{"x", "y"}[i%2]
		nodeName := []string{node, "node-b"}[i%3%2]
		ip := netip.AddrFrom4([4]byte{10, 100, byte(10 + i/250), byte(1 + i%250)})
		big.Pods = append(big.Pods, pt.Pod(ns, "extra"+ip.String(), nodeName, map[string]string{"app": []string{"a", "b", "c"}[i%3]}, ip.String()))
	}
	s1, s2 := policy.Compute(small), policy.Compute(big)
	r1, r2 := render.Render(&s1), render.Render(&s2)
	rules1, el1 := r1.Counts()
	rules2, el2 := r2.Counts()
	if rules1 != rules2 {
		t.Errorf("rules grew with pods: %d → %d", rules1, rules2)
	}
	if el2 <= el1 {
		t.Errorf("set elements did not grow with pods: %d → %d", el1, el2)
	}
	var text1, text2 []string
	for _, c := range r1.Chains {
		for _, r := range c.Rules {
			text1 = append(text1, c.Name+" "+r.Text())
		}
	}
	for _, c := range r2.Chains {
		for _, r := range c.Rules {
			text2 = append(text2, c.Name+" "+r.Text())
		}
	}
	if !reflect.DeepEqual(text1, text2) {
		t.Errorf("rules changed with pods:\n%v\n%v", text1, text2)
	}
}

// TestTracerAgreesWithModelAndOracle is the differential test: random
// clusters, random packets, the rendered ruleset traced like netfilter must
// decide as the model and as the oracle do.
func TestTracerAgreesWithModelAndOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	packets, revived := 0, 0
	for round := range 300 {
		in := pt.RandomInput(r)
		st := policy.Compute(in)
		rs := render.Render(&st)
		for _, p := range pt.RandomPackets(r, in, 300) {
			packets++
			traced, logs := rs.TraceLogs(render.HookForward, p)
			model, oracle := st.Allows(p), pt.OracleAllows(in, p)
			if traced != model || model != oracle {
				t.Fatalf("round %d %+v: traced %v, model %v, oracle %v\n%s\naudit:%s\n%s", round, p, traced, model, oracle, pt.Describe(in.Policies), pt.Describe(in.AuditPolicies), rs.Text())
			}
			logged, want := decodeLogs(t, &st, logs), pt.OracleDecide(in, p)
			if !reflect.DeepEqual(logged, want) {
				t.Fatalf("round %d %+v: logged %+v, oracle decides %+v\n%s\naudit:%s\n%s", round, p, logged, want, pt.Describe(in.Policies), pt.Describe(in.AuditPolicies), rs.Text())
			}
			// The same packet picked up mid-stream by conntrack: dropped
			// (unlogged) when TCP and either end is isolated, otherwise
			// decided as the SYN was.
			midPass, midLogs := rs.TraceSegment(render.HookForward, p, render.SegmentMidStream)
			wantPass, wantLogs := traced, logs
			if p.Protocol == corev1.ProtocolTCP && (oracleIsolated(in, p.Src) || oracleIsolated(in, p.Dst)) {
				wantPass, wantLogs = false, nil
				if traced {
					revived++
				}
			}
			if midPass != wantPass || !reflect.DeepEqual(midLogs, wantLogs) {
				t.Fatalf("round %d %+v mid-stream: traced %v %v, want %v %v\n%s\naudit:%s\n%s", round, p, midPass, midLogs, wantPass, wantLogs, pt.Describe(in.Policies), pt.Describe(in.AuditPolicies), rs.Text())
			}
			// The node sending the same packet (output hook): a new
			// connection always passes, unlogged; a mid-stream pickup is
			// dropped when TCP and the destination is isolated.
			for _, seg := range []render.Segment{render.SegmentSYN, render.SegmentMidStream} {
				outPass, outLogs := rs.TraceSegment(render.HookOutput, p, seg)
				want := !(seg == render.SegmentMidStream && p.Protocol == corev1.ProtocolTCP && oracleIsolated(in, p.Dst))
				if outPass != want || len(outLogs) > 0 {
					t.Fatalf("round %d %+v output hook (segment %d): traced %v %v, want %v unlogged\n%s", round, p, seg, outPass, outLogs, want, rs.Text())
				}
			}
		}
	}
	// revived counts packets whose SYN passes but whose mid-stream start is
	// dropped: the case the mid-stream rules exist for must be exercised.
	if revived == 0 {
		t.Error("no allowed TCP packet was dropped mid-stream: the random packets miss the case")
	}
	t.Logf("%d packets agreed (%d dropped only mid-stream)", packets, revived)
}

// oracleIsolated tells, from the oracle alone, whether ip is a local pod
// that an enforce policy isolates in either direction: a packet from it to
// an address outside the cluster meets an egress decision, a packet from
// such an address to it an ingress decision, other than an audit-only one.
func oracleIsolated(in policy.Input, ip netip.Addr) bool {
	outside := netip.MustParseAddr("192.0.2.1")
	if ip.Is6() {
		outside = netip.MustParseAddr("2001:db8::1")
	}
	for _, p := range []policy.Packet{{Src: ip, Dst: outside, Protocol: corev1.ProtocolTCP, Port: 1}, {Src: outside, Dst: ip, Protocol: corev1.ProtocolTCP, Port: 1}} {
		for _, d := range pt.OracleDecide(in, p) {
			if d.Verdict == policy.LogDropped || (d.Verdict == policy.LogAllowed && !policy.IsAuditKey(d.Policies[0])) {
				return true
			}
		}
	}
	return false
}

// decodeLogs turns traced log prefixes into decisions through the table
// the flow log reader uses.
func decodeLogs(t *testing.T, st *policy.State, logs []string) []policy.Decision {
	t.Helper()
	table := verdictlog.Table(st)
	var out []policy.Decision
	for _, l := range logs {
		e, ok := table[l]
		if !ok {
			t.Fatalf("log prefix %q is not in the table", l)
		}
		if len(l) > 64 {
			t.Fatalf("log prefix %q is longer than iptables' 64 bytes", l)
		}
		if pe, _, ok := verdictlog.Parse(l); !ok || pe.Verdict != e.Verdict || pe.Direction != e.Direction {
			t.Fatalf("verdictlog.Parse(%q) = %+v, %v; table says %+v", l, pe, ok, e)
		}
		out = append(out, policy.Decision{Direction: e.Direction, Verdict: e.Verdict, Policies: e.Policies})
	}
	return out
}

// TestLoggingNeverChangesVerdicts: with logging off the ruleset has no log
// rules and no allow chains, and decides every packet as with logging on.
func TestLoggingNeverChangesVerdicts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for range 100 {
		in := pt.RandomInput(r)
		st := policy.Compute(in)
		on, off := render.Render(&st), render.Render(&st, render.WithoutLog())
		for _, c := range off.Chains {
			for _, rule := range c.Rules {
				if rule.Log.Prefix != "" {
					t.Fatalf("WithoutLog rendered %s: %s", c.Name, rule.Text())
				}
			}
		}
		for _, p := range pt.RandomPackets(r, in, 100) {
			if a, b := on.Trace(render.HookForward, p), off.Trace(render.HookForward, p); a != b {
				t.Fatalf("%+v: %v with logging, %v without", p, a, b)
			}
		}
	}
}

func TestLogOptions(t *testing.T) {
	st := policy.Compute(cluster(goldenCases["deny-all"]...))
	rs := render.Render(&st, render.WithLog(render.LogOptions{Group: 7, Rate: 3, Burst: 4}))
	found := 0
	for _, c := range rs.Chains {
		for _, rule := range c.Rules {
			if rule.Log.Prefix != "" {
				found++
				if rule.Log != (render.Log{Prefix: rule.Log.Prefix, Group: 7, Rate: 3, Burst: 4}) || rule.Verdict != render.VerdictNone {
					t.Errorf("%s: %s", c.Name, rule.Text())
				}
			}
		}
	}
	if found == 0 {
		t.Error("no log rule")
	}
	if o := render.Resolve(); o.Log != (render.LogOptions{Group: verdictlog.DefaultGroup, Rate: render.DefaultLogRate, Burst: render.DefaultLogBurst}) {
		t.Errorf("defaults: %+v", o.Log)
	}
}

// TestLogTable: the table names every prefix the audit golden ruleset logs.
func TestLogTable(t *testing.T) {
	st := policy.Compute(goldenAudit())
	table := verdictlog.Table(&st)
	want := map[string]verdictlog.Entry{
		verdictlog.Prefix(policy.LogAllowed, policy.Ingress, []string{"x/web"}):       {Verdict: policy.LogAllowed, Direction: policy.Ingress, Policies: []string{"x/web"}},
		verdictlog.Prefix(policy.LogDropped, policy.Ingress, []string{"x/web"}):       {Verdict: policy.LogDropped, Direction: policy.Ingress, Policies: []string{"x/web"}},
		verdictlog.Prefix(policy.LogAllowed, policy.Ingress, []string{"audit:x/web"}): {Verdict: policy.LogAllowed, Direction: policy.Ingress, Policies: []string{"audit:x/web"}},
		verdictlog.Prefix(policy.LogAudited, policy.Ingress, []string{"audit:x/web"}): {Verdict: policy.LogAudited, Direction: policy.Ingress, Policies: []string{"audit:x/web"}},
	}
	if !reflect.DeepEqual(table, want) {
		t.Errorf("verdictlog.Table = %+v, want %+v", table, want)
	}
}

func TestInputHookPolicesEgressToTheNode(t *testing.T) {
	in := cluster(pt.Policy("x", "p", pt.Selecting(map[string]string{"app": "a"}), pt.Types(networkingv1.PolicyTypeEgress),
		pt.EgressRule(pt.Peers(pt.BlockPeer("192.168.0.0/24")), pt.Port(corev1.ProtocolUDP, 53))))
	st := policy.Compute(in)
	rs := render.Render(&st)
	nodeIP := "192.168.1.1"
	cases := []struct {
		p    policy.Packet
		want bool
	}{
		{pt.Packet("10.100.1.1", nodeIP, corev1.ProtocolTCP, 10250), false},
		{pt.Packet("10.100.1.1", "192.168.0.1", corev1.ProtocolUDP, 53), true},
		{pt.Packet("10.100.1.2", nodeIP, corev1.ProtocolTCP, 10250), true},
	}
	for _, c := range cases {
		if got := rs.Trace(render.HookInput, c.p); got != c.want {
			t.Errorf("input hook %+v: %v, want %v", c.p, got, c.want)
		}
	}
}

// TestMidStreamPackets: a TCP packet that conntrack would take as a new
// connection without being a SYN is dropped to or from a policed pod, in
// either direction, whatever the policies allow; others are unaffected.
func TestMidStreamPackets(t *testing.T) {
	// x/a (server) is isolated for ingress only and allows x/b on TCP 80;
	// x/b and y/c are not isolated; with audit, y/c is audit-only.
	in := cluster(pt.Policy("x", "web", pt.Selecting(map[string]string{"app": "a"}),
		pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"})), pt.TCP(80))))
	in.AuditPolicies = []*networkingv1.NetworkPolicy{pt.Policy("y", "watch", pt.Selecting(nil), pt.IngressRule(nil, pt.TCP(1)))}
	st := policy.Compute(in)
	rs := render.Render(&st)
	const (
		server, server6 = "10.100.1.1", "fd00:100::1:1"
		client, client6 = "10.100.1.2", "fd00:100::1:2"
		audited         = "10.100.2.3"
		nodeIP          = "192.168.1.1"
	)
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	cases := []struct {
		name string
		hook render.Hook
		p    policy.Packet
		seg  render.Segment
		want bool
	}{
		{"client SYN to server", render.HookForward, pt.Packet(client, server, tcp, 80), render.SegmentSYN, true},
		{"client mid-stream to server", render.HookForward, pt.Packet(client, server, tcp, 80), render.SegmentMidStream, false},
		// The revival: the server's retransmission after the cut. Nothing
		// isolates this direction, so only the mid-stream rule stops it.
		{"server SYN to client", render.HookForward, pt.Packet(server, client, tcp, 40000), render.SegmentSYN, true},
		{"server mid-stream to client", render.HookForward, pt.Packet(server, client, tcp, 40000), render.SegmentMidStream, false},
		{"server mid-stream to client (IPv6)", render.HookForward, pt.Packet(server6, client6, tcp, 40000), render.SegmentMidStream, false},
		{"server UDP to client", render.HookForward, pt.Packet(server, client, udp, 40000), render.SegmentMidStream, true},
		{"unpoliced mid-stream", render.HookForward, pt.Packet(client, audited, tcp, 1), render.SegmentMidStream, true},
		{"audit-only mid-stream", render.HookForward, pt.Packet(audited, client, tcp, 40000), render.SegmentMidStream, true},
		{"policed pod mid-stream to the node", render.HookInput, pt.Packet(server, nodeIP, tcp, 10250), render.SegmentMidStream, false},
		{"policed pod SYN to the node", render.HookInput, pt.Packet(server, nodeIP, tcp, 10250), render.SegmentSYN, true},
		{"unpoliced pod mid-stream to the node", render.HookInput, pt.Packet(client, nodeIP, tcp, 10250), render.SegmentMidStream, true},
		// The node's own packets (output hook): its retransmission after a
		// cut is dropped; its new connections (kubelet probes) pass.
		{"node mid-stream to policed pod", render.HookOutput, pt.Packet(nodeIP, server, tcp, 80), render.SegmentMidStream, false},
		{"node mid-stream to policed pod (IPv6)", render.HookOutput, pt.Packet("fd00::1", server6, tcp, 80), render.SegmentMidStream, false},
		{"node SYN to policed pod, denied port", render.HookOutput, pt.Packet(nodeIP, server, tcp, 8080), render.SegmentSYN, true},
		{"node UDP to policed pod", render.HookOutput, pt.Packet(nodeIP, server, udp, 53), render.SegmentMidStream, true},
		{"node mid-stream to unpoliced pod", render.HookOutput, pt.Packet(nodeIP, client, tcp, 80), render.SegmentMidStream, true},
		{"policed pod mid-stream from the node's address", render.HookOutput, pt.Packet(server, nodeIP, tcp, 80), render.SegmentMidStream, true},
	}
	for _, c := range cases {
		got, logs := rs.TraceSegment(c.hook, c.p, c.seg)
		if got != c.want {
			t.Errorf("%s: pass %v, want %v", c.name, got, c.want)
		}
		if !got && len(logs) > 0 {
			t.Errorf("%s: a mid-stream drop logged %v", c.name, logs)
		}
	}
	want := []netip.Addr{netip.MustParseAddr(server), netip.MustParseAddr(server6)}
	if got := render.PolicedIPs(&st); !reflect.DeepEqual(got, want) {
		t.Errorf("PolicedIPs = %v, want %v (audit-only pods are not policed)", got, want)
	}
	for _, name := range []string{render.SetPoliced4, render.SetPoliced6} {
		s := rs.Set(name)
		if s == nil || len(s.Elements) != 1 {
			t.Errorf("set %s = %+v, want the server's address", name, s)
		}
	}
}

// TestWithTable: the table name is the only difference WithTable makes.
func TestWithTable(t *testing.T) {
	st := policy.Compute(cluster(goldenCases["deny-all"]...))
	want := strings.ReplaceAll(render.Render(&st).Text(), "inet "+render.TableName, "inet other")
	if got := render.Render(&st, render.WithTable("other")).Text(); got != want {
		t.Errorf("WithTable:\n%s\nwant\n%s", got, want)
	}
	if got := render.ColdStart(render.WithTable("other")).Text(); !strings.HasPrefix(got, "add table inet other\n") {
		t.Errorf("ColdStart with a table:\n%s", got)
	}
}
