package iptables_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/internal/testenv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/dataplane/verdictlog"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const node = pt.Node

// manyPods puts n isolated pods on the node, enough for a dispatch tree.
func manyPods(n int) []policy.Pod {
	pods := pt.BasePods()
	for i := range n {
		pods = append(pods, pt.Pod("x", fmt.Sprintf("many%d", i), node, map[string]string{"app": "many"},
			fmt.Sprintf("10.100.%d.%d", 8+i/100, 1+i%100), fmt.Sprintf("fd00:100::8:%x", 1+i)))
	}
	return pods
}

func goldenStates() map[string]*policy.State {
	return map[string]*policy.State{
		"empty":    pt.ClusterState(pt.BasePods()),
		"deny-all": pt.ClusterState(pt.BasePods(), pt.Policy("x", "deny-all", pt.Types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))),
		"mixed":    pt.ClusterState(pt.BasePods(), pt.MixedPolicies()...),
		"many-ports": pt.ClusterState(pt.BasePods(), pt.Policy("x", "ports", pt.Selecting(map[string]string{"app": "a"}),
			pt.IngressRule(pt.Peers(pt.PodPeer(nil)), pt.TCP(1), pt.TCP(3), pt.TCP(5), pt.TCP(7), pt.TCP(9), pt.TCP(11), pt.TCP(13), pt.TCP(15),
				pt.PortRange(corev1.ProtocolTCP, 100, 200), pt.PortRange(corev1.ProtocolTCP, 300, 400), pt.PortRange(corev1.ProtocolTCP, 500, 600),
				pt.PortRange(corev1.ProtocolTCP, 700, 800), pt.Port(corev1.ProtocolUDP, 53), pt.AllPortsOf(corev1.ProtocolSCTP)))),
		"dispatch-tree": pt.ClusterState(manyPods(40), pt.Policy("x", "deny-many", pt.Selecting(map[string]string{"app": "many"}),
			pt.Types(networkingv1.PolicyTypeIngress))),
	}
}

// TestGolden compares the restore script of each state on a fresh node with
// testdata/<state>-<family>.rules.
func TestGolden(t *testing.T) {
	for name, st := range goldenStates() {
		if len(st.Errors) > 0 {
			t.Fatalf("%s: unexpected model errors: %v", name, st.Errors)
		}
		for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
			t.Run(name+"-"+fam.String(), func(t *testing.T) {
				got := iptables.RestoreInput(iptables.Render(st, fam, iptables.DefaultMarkBit), iptables.Current{})
				path := filepath.Join("testdata", name+"-"+fam.String()+".rules")
				testenv.Golden(t, path, got, *update)
			})
		}
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	pols := pt.MixedPolicies()
	a := pt.ClusterState(pt.BasePods(), pols...)
	b := pt.ClusterState(pt.BasePods(), pols[2], pols[1], pols[0])
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		if !reflect.DeepEqual(iptables.Render(a, fam, iptables.DefaultMarkBit), iptables.Render(b, fam, iptables.DefaultMarkBit)) {
			t.Errorf("%s: Render depends on input order", fam)
		}
	}
}

// TestChainNamesFitTheKernel: chain names are at most 28 bytes and unique.
func TestChainNamesFitTheKernel(t *testing.T) {
	for name, st := range goldenStates() {
		for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
			seen := map[string]bool{}
			for _, c := range iptables.Render(st, fam, iptables.DefaultMarkBit).Chains {
				if len(c.Name) > 28 || !strings.HasPrefix(c.Name, iptables.ChainPrefix) || seen[c.Name] {
					t.Errorf("%s %s: bad or duplicate chain name %q", name, fam, c.Name)
				}
				seen[c.Name] = true
			}
		}
	}
}

// TestNoAccept: allowed packets leave by RETURN; an ACCEPT would skip the
// rest of the built-in chain (other software's rules).
func TestNoAccept(t *testing.T) {
	for name, st := range goldenStates() {
		for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
			text := iptables.RestoreInput(iptables.Render(st, fam, iptables.DefaultMarkBit), iptables.Current{})
			if strings.Contains(text, "ACCEPT") {
				t.Errorf("%s %s: ruleset accepts:\n%s", name, fam, text)
			}
		}
	}
}

// TestDispatchTreeIsShallow: with many isolated pods, reaching any pod's
// group takes far fewer rules than one per pod.
func TestDispatchTreeIsShallow(t *testing.T) {
	st := pt.ClusterState(manyPods(200), pt.Policy("x", "deny-many", pt.Selecting(map[string]string{"app": "many"}), pt.Types(networkingv1.PolicyTypeIngress)))
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		rs := iptables.Render(st, fam, iptables.DefaultMarkBit)
		// The mid-stream chains dispatch on the same pods the same way.
		for _, base := range []string{iptables.ChainIngress, iptables.ChainMidStreamSrc, iptables.ChainMidStreamDst} {
			if n := len(rs.Chain(base).Rules); n > 2 {
				t.Errorf("%s: top dispatch chain %s has %d rules, want a 2-way split", fam, base, n)
			}
			var walk func(name string, depth int) int
			walk = func(name string, depth int) int {
				worst := 0
				for _, r := range rs.Chain(name).Rules {
					if r.Target == iptables.Jump && strings.HasPrefix(r.Chain, base+"-") {
						worst = max(worst, walk(r.Chain, depth+1))
					}
				}
				return max(worst, len(rs.Chain(name).Rules)) + 2*depth
			}
			if cost := walk(base, 0); cost > 40 {
				t.Errorf("%s: worst dispatch cost in %s %d rules for 200 pods", fam, base, cost)
			}
		}
	}
}

// TestTracerAgreesWithModelAndNFT is the differential test: random
// clusters and packets; the iptables rules traced like netfilter decide as
// the model, the oracle and the nftables ruleset do, for the forward, the
// input and the output path, whatever the packet mark was on entry.
func TestTracerAgreesWithModelAndNFT(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	packets, midStreamOnly := 0, 0
	for round := range 300 {
		in := pt.RandomInput(r)
		if round%10 == 0 {
			// Enough local pods for dispatch trees.
			for i := range 40 {
				in.Pods = append(in.Pods, pt.Pod("x", fmt.Sprintf("t%d", i), pt.Node, map[string]string{"app": "a"},
					fmt.Sprintf("10.0.9.%d", 1+i), fmt.Sprintf("fd00::9:%x", 1+i)))
			}
		}
		st := policy.Compute(in)
		nft := render.Render(&st)
		rs4 := iptables.Render(&st, iptables.IPv4, iptables.DefaultMarkBit)
		rs6 := iptables.Render(&st, iptables.IPv6, iptables.DefaultMarkBit)
		for _, p := range pt.RandomPackets(r, in, 300) {
			packets++
			rs := rs4
			if p.Src.Is6() {
				rs = rs6
			}
			mark := uint32(r.IntN(2)) * iptables.DefaultMarkBit // a foreign mark must not open anything
			got, logs := traceLogs(rs, iptables.ChainForward, p, mark)
			model, oracle := st.Allows(p), pt.OracleAllows(in, p)
			if got != model || model != oracle {
				t.Fatalf("round %d %+v mark %#x: forward traced %v, model %v, oracle %v\n%s\naudit:%s\n%s", round, p, mark, got, model, oracle,
					pt.Describe(in.Policies), pt.Describe(in.AuditPolicies), iptables.RestoreInput(rs, iptables.Current{}))
			}
			// The same log prefixes as the nftables ruleset, decoding to
			// what the oracle decides.
			if _, nftLogs := nft.TraceLogs(render.HookForward, p); !reflect.DeepEqual(logs, nftLogs) {
				t.Fatalf("round %d %+v: iptables logs %q, nftables %q\n%s", round, p, logs, nftLogs, iptables.RestoreInput(rs, iptables.Current{}))
			}
			table := verdictlog.Table(&st)
			var decided []policy.Decision
			for _, l := range logs {
				e, ok := table[l]
				if !ok {
					t.Fatalf("log prefix %q not in the table", l)
				}
				decided = append(decided, policy.Decision{Direction: e.Direction, Verdict: e.Verdict, Policies: e.Policies})
			}
			if want := pt.OracleDecide(in, p); !reflect.DeepEqual(decided, want) {
				t.Fatalf("round %d %+v: logged %+v, oracle %+v\n%s", round, p, decided, want, iptables.RestoreInput(rs, iptables.Current{}))
			}
			if got, want := trace(rs, iptables.ChainInput, p, mark), nft.Trace(render.HookInput, p); got != want {
				t.Fatalf("round %d %+v: input traced %v, nftables %v\n%s", round, p, got, want, iptables.RestoreInput(rs, iptables.Current{}))
			}
			// The node's own new connections are never judged.
			if got, logs := traceLogs(rs, iptables.ChainOutput, p, mark); !got || len(logs) > 0 {
				t.Fatalf("round %d %+v: output traced %v %q, want passed unlogged\n%s", round, p, got, logs, iptables.RestoreInput(rs, iptables.Current{}))
			}
			// Picked up mid-stream by conntrack: as the nftables ruleset
			// decides it (the render tests check that against the oracle).
			for _, start := range []struct {
				chain string
				hook  render.Hook
			}{{iptables.ChainForward, render.HookForward}, {iptables.ChainInput, render.HookInput}, {iptables.ChainOutput, render.HookOutput}} {
				got, logs := traceSegment(rs, start.chain, p, mark, true)
				want, wantLogs := nft.TraceSegment(start.hook, p, render.SegmentMidStream)
				if got != want || !reflect.DeepEqual(logs, wantLogs) {
					t.Fatalf("round %d %+v mid-stream from %s: traced %v %q, nftables %v %q\n%s", round, p, start.chain, got, logs, want, wantLogs, iptables.RestoreInput(rs, iptables.Current{}))
				}
				if !got && start.hook == render.HookForward && nft.Trace(render.HookForward, p) {
					midStreamOnly++
				}
			}
		}
	}
	if midStreamOnly == 0 {
		t.Error("no allowed TCP packet was dropped mid-stream: the random packets miss the case")
	}
	t.Logf("%d packets agreed (%d dropped only mid-stream)", packets, midStreamOnly)
}
