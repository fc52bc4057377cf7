package kerneltest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

// foreignNft is another program's nftables state: sets, a base chain in the
// forward hook that jumps to a regular chain, and a table that has our
// table's name in another family (it is not ours to delete).
const foreignNft = `table inet other {
	set blocked {
		type ipv4_addr
		elements = { 192.0.2.1, 192.0.2.2 }
	}
	set ports {
		type inet_service
		flags interval
		elements = { 9100-9200 }
	}
	chain helper {
		tcp dport @ports counter return
	}
	chain keep {
		type filter hook forward priority 10; policy accept;
		ip saddr @blocked counter drop
		udp dport 9998 counter
		jump helper
	}
}
table ip palisade {
	chain other {
		type filter hook input priority 5; policy accept;
		tcp dport 2222 counter
	}
}
`

// addForeignState gives node n other software's rules: chains and rules in
// filter, nat and mangle of both families, one rule after our jump that
// drops TCP 81, a mangle rule that sets the iptables backend's mark bit on
// every packet, and the nft tables of foreignNft.
func addForeignState(t *testing.T, n *netnstest.Node) {
	t.Helper()
	mark := fmt.Sprintf("%#x/%#x", iptables.DefaultMarkBit, iptables.DefaultMarkBit)
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, args := range [][]string{
			{"-N", "OTHER"},
			{"-A", "OTHER", "-p", "udp", "--dport", "9999", "-j", "RETURN"},
			{"-A", "FORWARD", "-j", "OTHER"},
			{"-A", "FORWARD", "-p", "tcp", "--dport", "81", "-j", "DROP"},
			{"-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
			// A foreign rule in OUTPUT, where our jump to PALISADE-OUTPUT goes
			// first (with iptables-nft the jump alone would create an empty
			// built-in OUTPUT chain, as it does FORWARD and INPUT).
			{"-A", "OUTPUT", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT"},
			{"-t", "nat", "-N", "KUBE-TEST"},
			{"-t", "nat", "-A", "KUBE-TEST", "-j", "RETURN"},
			{"-t", "mangle", "-A", "PREROUTING", "-j", "MARK", "--set-xmark", mark},
		} {
			n.Run(t, append([]string{bin}, args...)...)
		}
	}
	f := filepath.Join(t.TempDir(), "foreign.nft")
	if err := os.WriteFile(f, []byte(foreignNft), 0o644); err != nil {
		t.Fatal(err)
	}
	n.Run(t, "nft", "-f", f)
}

// firewall is everything a node's firewall holds, as text, counters zeroed.
func firewall(t *testing.T, n *netnstest.Node) string {
	t.Helper()
	return "# nft list ruleset\n" + n.NftRuleset(t) + "# iptables-save\n" + n.IptablesSave(t, false) + "# ip6tables-save\n" + n.IptablesSave(t, true)
}

// coexistState is one state the coexistence test syncs.
type coexistState struct {
	name string
	st   policy.State
}

// coexistStates vary policies and pods; the first one is the state the
// test ends on and probes.
func (c *cluster) coexistStates(t *testing.T) []coexistState {
	web := pt.Policy("x", "web", pt.Selecting(app("a")), pt.IngressRule(pt.Peers(pt.PodPeer(app("b"))), pt.TCP(80), pt.TCP(81)))
	lock := pt.Policy("y", "lock", pt.Types(ingress, egress),
		pt.EgressRule(pt.Peers(pt.BlockPeer("10.100.0.0/16", "10.100.1.0/24"), pt.BlockPeer("fd00:100::/48")), pt.Port(udpP, 53)))
	deny := pt.Policy("z", "deny", pt.Types(ingress, egress))
	// edit changes the pods of an input: drop removes them, relabel gives
	// one another app label.
	edit := func(in policy.Input, relabel string, drop ...string) policy.Input {
		var out []policy.Pod
		for _, p := range in.Pods {
			key := p.Namespace + "/" + p.Name
			if strings.Contains(strings.Join(drop, " "), key) {
				continue
			}
			if key == relabel {
				p.Labels = app("other")
			}
			out = append(out, p)
		}
		in.Pods = out
		return in
	}
	inputs := []struct {
		name string
		in   policy.Input
	}{
		{"web and lock", c.input([]*networkingv1.NetworkPolicy{web, lock})},
		{"web only", c.input([]*networkingv1.NetworkPolicy{web})},
		{"pods removed", edit(c.input([]*networkingv1.NetworkPolicy{web, lock}), "", "x/b", "y/d")},
		{"pod relabelled", edit(c.input([]*networkingv1.NetworkPolicy{web, lock, deny}), "y/d")},
		{"deny in z", c.input([]*networkingv1.NetworkPolicy{deny})},
		{"no policy", c.input(nil)},
	}
	out := make([]coexistState, len(inputs))
	for i, s := range inputs {
		out[i] = coexistState{s.name, policy.Compute(s.in)}
		if len(out[i].st.Errors) > 0 {
			t.Fatalf("state %q is malformed: %v", s.name, out[i].st.Errors)
		}
	}
	return out
}

// TestCoexistence (issue 7, item 10): with other software's nftables tables
// and iptables rules in place, 100 syncs through varying states and an
// agent restart leave everything that is not ours byte-identical, and
// Uninstall leaves the whole firewall as it was before; a second Uninstall
// changes nothing. A foreign DROP after our rules still applies to traffic
// we allow (we never accept for others), and a foreign mark bit opens
// nothing.
func TestCoexistence(t *testing.T) {
	ctx := context.Background()
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			c := newCluster(t)
			addForeignState(t, c.a)
			before := firewall(t, c.a)
			foreign := netnstest.Without(before, bk.owns)
			states := c.coexistStates(t)
			fresh := map[int]string{}
			rng := rand.New(rand.NewPCG(10, uint64(len(bk.name))))
			b := bk.new(t, c.a.NS)
			for i := range 100 {
				k := rng.IntN(len(states))
				if i == 99 {
					k = 0
				}
				restart := i == 50
				if restart {
					// While the agent is down, other software inserts a
					// rule before our jump.
					b = bk.new(t, c.a.NS)
					c.a.Run(t, "iptables", "-I", "FORWARD", "1", "-j", "OTHER")
				}
				if _, err := b.Sync(ctx, &states[k].st); err != nil {
					t.Fatalf("sync %d (%s): %v", i, states[k].name, err)
				}
				if restart {
					if bk.name == "iptables" {
						ourJumpsFirst(t, c.a)
					}
					// The first -j OTHER is the inserted one, now after
					// our jump.
					c.a.Run(t, "iptables", "-D", "FORWARD", "-j", "OTHER")
				}
				now := firewall(t, c.a)
				if d := netnstest.Diff(foreign, netnstest.Without(now, bk.owns)); d != "" {
					t.Fatalf("sync %d (%s): other software's state changed:\n%s", i, states[k].name, d)
				}
				if bk.name == "iptables" {
					// Chains of earlier states are gone: the node holds what
					// a fresh node synced once holds. (The nft package's
					// TestIncrementalEqualsFull shows this for its table.)
					if _, ok := fresh[k]; !ok {
						fresh[k] = ownedIptables(t, freshSync(t, bk, &states[k].st), bk.owns)
					}
					if d := netnstest.Diff(fresh[k], ownedIptables(t, c.a, bk.owns)); d != "" {
						t.Fatalf("sync %d (%s): our chains differ from a fresh sync of the same state:\n%s", i, states[k].name, d)
					}
				}
			}

			// web lets x/b reach x/a on TCP 80 and 81, but the foreign DROP
			// of TCP 81 after our rules still applies; the foreign mark bit
			// does not let y/d in.
			c.forget(t)
			for _, m := range c.mismatches(all(tcp("x/b", "x/a", 80, yes), tcp("x/b", "x/a", 81, no), tcp("y/d", "x/a", 80, no))) {
				t.Error(m)
			}

			for i, u := range []string{"first", "second"} {
				if i == 1 {
					b = bk.new(t, c.a.NS)
				}
				if err := b.Uninstall(ctx); err != nil {
					t.Fatalf("%s uninstall: %v", u, err)
				}
				if d := netnstest.Diff(before, firewall(t, c.a)); d != "" {
					t.Fatalf("after the %s uninstall the firewall differs from before the first sync:\n%s", u, d)
				}
			}
			for _, m := range c.mismatches(all(tcp("y/d", "x/a", 80, yes), tcp("x/b", "x/a", 81, no))) {
				t.Errorf("uninstalled: %s", m)
			}
		})
	}
}

// freshSync programs st with a new backend on a new node.
func freshSync(t *testing.T, bk backendKind, st *policy.State) *netnstest.Node {
	t.Helper()
	ref := netnstest.NewNode(t, "ref", 3)
	if _, err := bk.new(t, ref.NS).Sync(context.Background(), st); err != nil {
		t.Fatalf("reference sync: %v", err)
	}
	return ref
}

// ownedIptables is what iptables-save and ip6tables-save show of ours.
func ownedIptables(t *testing.T, n *netnstest.Node, mark string) string {
	return netnstest.Owned(n.IptablesSave(t, false), mark) + "\n" + netnstest.Owned(n.IptablesSave(t, true), mark)
}

// ourJumpsFirst checks that each hook's first rule is the jump to our
// chain and that the jump is there once, in both families.
func ourJumpsFirst(t *testing.T, n *netnstest.Node) {
	t.Helper()
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, h := range iptables.Hooks() {
			lines := strings.Split(strings.TrimSpace(n.Run(t, bin, "-S", h.Builtin)), "\n")
			jump := "-A " + h.Builtin + " -j " + h.Chain
			if len(lines) < 2 || lines[1] != jump || strings.Count(strings.Join(lines, "\n"), jump) != 1 {
				t.Errorf("%s %s: our jump is not rule 1 exactly once:\n%s", bin, h.Builtin, strings.Join(lines, "\n"))
			}
		}
	}
}
