package kerneltest

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/flowlog"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// The flow log tests log with a small limit so that the flood shows it.
const (
	flowLogRate  = 10
	flowLogBurst = 20
)

var flowLogOptions = render.WithLog(render.LogOptions{Rate: flowLogRate, Burst: flowLogBurst})

// events collects what a reader hands over.
type events struct {
	mu  sync.Mutex
	all []flowlog.Event
}

func (e *events) add(ev flowlog.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) matching(match func(flowlog.Event) bool) []flowlog.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []flowlog.Event
	for _, ev := range e.all {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// wait returns the first event that matches, waiting up to two seconds.
func (e *events) wait(t *testing.T, what string, match func(flowlog.Event) bool) flowlog.Event {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if got := e.matching(match); len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			e.mu.Lock()
			defer e.mu.Unlock()
			t.Fatalf("no event for %s; events: %+v", what, e.all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flow matches events of one connection attempt.
func flow(proto uint8, src, dst netip.Addr, port uint16) func(flowlog.Event) bool {
	return func(ev flowlog.Event) bool {
		return ev.Protocol == proto && ev.Src == src && ev.Dst == dst && ev.DstPort == port
	}
}

// TestFlowLog: on both backends, the verdict log read back through
// flowlog.Reader names the deciding policies, verdict, direction, addresses
// and ports of real connections; audit-only pods accept what their audit
// policy would deny and log it Audited; and a SYN flood is logged no more
// than the limit allows while every SYN is still dropped.
//
// Pods on node-a: x/a (app=a, dual-stack) under enforce policy x/web, which
// allows ingress from app=b on TCP 80 and UDP 53; x/c (app=c) under only the
// audit policy of the same name, which allows app=b on TCP 80; x/b (app=b)
// is the client. An audit policy that also selects x/a changes nothing.
func TestFlowLog(t *testing.T) {
	testenv.RequireRoot(t)
	for _, kind := range backends {
		t.Run(kind.name, func(t *testing.T) {
			node := netnstest.NewNodePrefixed(t, "pfa", nodeA, 1)
			a, b, c := node.AddPod(t, 10, true), node.AddPod(t, 11, true), node.AddPod(t, 12, false)
			for _, p := range []*netnstest.Pod{a, c} {
				p.Serve(t, []int{80, 81}, []int{53})
			}
			fromB := pt.IngressRule(pt.Peers(pt.PodPeer(app("b"))), pt.TCP(80), pt.Port(udpP, 53))
			in := policy.Input{
				NodeName:   nodeA,
				Namespaces: []policy.Namespace{pt.Namespace("x", nil)},
				Pods: []policy.Pod{
					{Namespace: "x", Name: "a", NodeName: nodeA, Labels: app("a"), IPs: a.IPs()},
					{Namespace: "x", Name: "b", NodeName: nodeA, Labels: app("b"), IPs: b.IPs()},
					{Namespace: "x", Name: "c", NodeName: nodeA, Labels: app("c"), IPs: c.IPs()},
				},
				Policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "web", pt.Selecting(app("a")), fromB)},
				AuditPolicies: []*networkingv1.NetworkPolicy{
					pt.Policy("x", "web", pt.Selecting(app("c")), pt.IngressRule(pt.Peers(pt.PodPeer(app("b"))), pt.TCP(80))),
					// An audit policy on a pod that an enforce policy selects
					// changes nothing: b→a:81 stays dropped by x/web alone.
					pt.Policy("x", "extra", pt.Selecting(app("a")), pt.IngressRule(pt.Peers(pt.PodPeer(app("b"))), pt.TCP(81))),
				},
			}
			st := policy.Compute(in)

			reader := flowlog.NewReader(flowlog.Config{NetNSFd: node.Fd})
			reader.Update(&st)
			got := &events{}
			netnstest.StartReader(t, reader, got.add)
			if _, err := kind.new(t, node.NS, flowLogOptions).Sync(context.Background(), &st); err != nil {
				t.Fatalf("sync: %v", err)
			}

			reach := func(p netnstest.Probe, want bool) {
				t.Helper()
				ok, err := netnstest.Reach(p)
				if err != nil || ok != want {
					t.Fatalf("%s: reached %v (%v), want %v", p, ok, err, want)
				}
			}
			check := func(what string, match func(flowlog.Event) bool, verdict policy.LogVerdict, policies ...string) {
				t.Helper()
				ev := got.wait(t, what, match)
				if ev.Verdict != verdict || ev.Direction != policy.Ingress || !slices.Equal(ev.Policies, policies) || ev.SrcPort == 0 {
					t.Errorf("%s: event %+v, want %s ingress by %v with a source port", what, ev, verdict, policies)
				}
			}
			probe := func(proto string, from, to *netnstest.Pod, src, dst netip.Addr, port int) netnstest.Probe {
				p := netnstest.Probe{From: from.NS, To: to.NS, Src: src, Dst: dst, Port: port}
				p.Protocol = tcpP
				if proto == "udp" {
					p.Protocol = udpP
				}
				return p
			}

			reach(probe("tcp", b, a, b.IP4, a.IP4, 80), true)
			check("allowed TCP", flow(6, b.IP4, a.IP4, 80), policy.LogAllowed, "x/web")
			reach(probe("tcp", b, a, b.IP6, a.IP6, 80), true)
			check("allowed TCP over IPv6", flow(6, b.IP6, a.IP6, 80), policy.LogAllowed, "x/web")
			reach(probe("udp", b, a, b.IP4, a.IP4, 53), true)
			check("allowed UDP", flow(17, b.IP4, a.IP4, 53), policy.LogAllowed, "x/web")
			reach(probe("tcp", b, a, b.IP4, a.IP4, 81), false)
			check("denied TCP", flow(6, b.IP4, a.IP4, 81), policy.LogDropped, "x/web")
			reach(probe("tcp", b, c, b.IP4, c.IP4, 81), true)
			check("audited TCP", flow(6, b.IP4, c.IP4, 81), policy.LogAudited, policy.AuditKey("x", "web"))
			reach(probe("tcp", b, c, b.IP4, c.IP4, 80), true)
			check("audit-allowed TCP", flow(6, b.IP4, c.IP4, 80), policy.LogAllowed, policy.AuditKey("x", "web"))

			// The flood: a fresh limit bucket (the denied probe above used
			// one token of it), 5,000 SYNs to the denied port.
			const n = 5000
			isFlood := func(ev flowlog.Event) bool {
				return flow(6, b.IP4, a.IP4, 81)(ev) && ev.SrcPort >= 10000 && ev.SrcPort < 10000+n
			}
			start := time.Now()
			arrived, err := netnstest.FloodSYN(b.NS, a.NS, b.IP4, a.IP4, 81, n)
			if err != nil {
				t.Fatal(err)
			}
			if arrived != 0 {
				t.Errorf("%d of %d flooded SYNs reached the pod", arrived, n)
			}
			// The flood's last log messages: the event of a connection made
			// after it comes through the same NFLOG group behind them (its
			// rule has a limit bucket of its own).
			allowedAB := flow(6, b.IP4, a.IP4, 80)
			before := len(got.matching(allowedAB))
			reach(probe("tcp", b, a, b.IP4, a.IP4, 80), true)
			waitFor(t, 5*time.Second, "the log event of a connection made after the flood", func() bool { return len(got.matching(allowedAB)) > before })
			elapsed := time.Since(start)
			logged := len(got.matching(isFlood))
			// Both limits hand out at most rate+burst packets at once (nft:
			// a bucket of one second plus the burst; xt_limit: the burst),
			// then rate per second.
			most := flowLogRate + flowLogBurst + int(elapsed.Seconds()*flowLogRate) + 1
			if logged == 0 || logged > most {
				t.Errorf("flood of %d SYNs in %v logged %d events, want 1..%d", n, elapsed, logged, most)
			}
			for _, ev := range got.matching(isFlood) {
				if ev.Verdict != policy.LogDropped {
					t.Fatalf("flood event %+v", ev)
				}
			}
			s := reader.Stats()
			t.Logf("flood: %d logged in %v (at most %d); reader stats %+v", logged, elapsed, most, s)
			if s.Received == 0 || s.Undecodable != 0 {
				t.Errorf("reader stats %+v", s)
			}
		})
	}
}
