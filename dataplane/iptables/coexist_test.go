package iptables_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/policy"
	pt "github.com/palisade-dev/palisade/dataplane/policy/policytest"
)

// foreignState is other software's rules: chains and rules in filter, nat
// and mangle of both families, one rule after our jump that drops TCP 81,
// a mangle rule that sets our mark bit on every packet, and an nft table.
func foreignState(t *testing.T, n *testNode) {
	for _, bin := range []string{"iptables", "ip6tables"} {
		n.ns.run(t, bin, "-N", "OTHER")
		n.ns.run(t, bin, "-A", "OTHER", "-p", "udp", "--dport", "9999", "-j", "RETURN")
		n.ns.run(t, bin, "-A", "FORWARD", "-j", "OTHER")
		n.ns.run(t, bin, "-A", "FORWARD", "-p", "tcp", "--dport", "81", "-j", "DROP")
		n.ns.run(t, bin, "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
		n.ns.run(t, bin, "-t", "nat", "-N", "KUBE-TEST")
		n.ns.run(t, bin, "-t", "nat", "-A", "KUBE-TEST", "-j", "RETURN")
		n.ns.run(t, bin, "-t", "mangle", "-A", "PREROUTING", "-j", "MARK", "--set-xmark", "0x800000/0x800000")
	}
	n.ns.run(t, "nft", "add table inet other; add chain inet other keep { type filter hook forward priority 10; }; add rule inet other keep udp dport 9998 counter")
}

func hookedOnce(t *testing.T, n *testNode, fam iptables.Family, step string) {
	t.Helper()
	bin := "iptables"
	if fam == iptables.IPv6 {
		bin = "ip6tables"
	}
	for _, h := range iptables.Hooks {
		lines := strings.Split(strings.TrimSpace(n.ns.run(t, bin, "-S", h.Builtin)), "\n")
		jump := "-A " + h.Builtin + " -j " + h.Chain
		if len(lines) < 2 || lines[1] != jump || strings.Count(strings.Join(lines, "\n"), jump) != 1 {
			t.Errorf("%s %s: our jump is not rule 1 exactly once:\n%s", step, fam, strings.Join(lines, "\n"))
		}
	}
}

// TestKernelCoexistenceResyncAndUninstall: syncs (across a restart) and
// Uninstall leave every other chain, rule and table byte-identical; other
// software's rules after our jump still see allowed packets (we RETURN,
// never ACCEPT); a mark bit set by someone else opens nothing; after each
// sync the kernel holds what a fresh node synced once with the same state
// holds (stale chains gone); Uninstall restores the table exactly.
func TestKernelCoexistenceResyncAndUninstall(t *testing.T) {
	n := newTestNode(t)
	pods := kernelPods()[:3]
	for _, p := range pods {
		n.addHost(p.Namespace+"/"+p.Name, p.IPs[0].String(), p.IPs[1].String())
	}
	foreignState(t, n)
	before := map[iptables.Family]string{iptables.IPv4: n.save(iptables.IPv4), iptables.IPv6: n.save(iptables.IPv6)}
	otherTable := n.ns.run(t, "nft", "list", "table", "inet", "other")

	web := pt.Policy("x", "web", pt.Selecting(map[string]string{"app": "a"}),
		pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"})), pt.TCP(80), pt.TCP(81)))
	extra := pt.Policy("y", "lock", pt.Selecting(nil), pt.Types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress),
		pt.EgressRule(pt.Peers(pt.BlockPeer("10.101.0.0/16", "10.101.1.0/24"), pt.BlockPeer("fd00:101::/48")), pt.Port(corev1.ProtocolUDP, 53)))
	steps := []struct {
		name string
		st   *policy.State
	}{
		{"two policies", cluster(pods, web, extra)},
		{"same again", cluster(pods, web, extra)},
		{"policy removed", cluster(pods, web)},
		{"pod removed", cluster(pods[1:], web)},
		{"back", cluster(pods, web, extra)},
		{"nothing", cluster(pods)},
		{"web only", cluster(pods, web)},
	}
	b := newBackend(t)
	for i, s := range steps {
		if i == 3 {
			b = newBackend(t) // an agent restart: a new backend takes over
			// and someone inserted a rule before our jump meanwhile.
			n.ns.run(t, "iptables", "-I", "FORWARD", "1", "-j", "OTHER")
		}
		n.sync(b, s.st)
		if i == 3 {
			// The sync moved our jump back to rule 1; then remove the
			// inserted rule, now the first -j OTHER after ours.
			hookedOnce(t, n, iptables.IPv4, "after a rule was inserted before ours")
			n.ns.run(t, "iptables", "-D", "FORWARD", "-j", "OTHER")
		}
		ref := newNamespace(t, "ref")
		ref.do(func() {
			if _, err := newBackend(t).Sync(t.Context(), s.st); err != nil {
				t.Errorf("reference sync: %v", err)
			}
		})
		for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
			if got, want := n.foreign(fam), foreignOf(before[fam]); got != want {
				t.Fatalf("step %q %s: other rules changed:\n--- before\n%s\n--- after\n%s", s.name, fam, want, got)
			}
			hookedOnce(t, n, fam, s.name)
			if got, want := n.ours(fam), oursIn(t, ref, fam); got != want {
				t.Errorf("step %q %s: kernel differs from a fresh sync of the same state:\n--- resynced\n%s\n--- fresh\n%s", s.name, fam, got, want)
			}
		}
		if got := n.ns.run(t, "nft", "list", "table", "inet", "other"); got != otherTable {
			t.Errorf("step %q: nft table inet other changed:\n%s", s.name, got)
		}
	}
	// web allows x/b → x/a on TCP 80 and 81; the foreign DROP of TCP 81
	// after our jump still applies, so we returned rather than accepted.
	// The foreign mark bit (set in mangle) must not let y/c in.
	n.expect("coexistence", []check{
		{"x/b", "x/a", TCP, 80, false, true},
		{"x/b", "x/a", TCP, 80, true, true},
		{"x/b", "x/a", TCP, 81, false, false},
		{"x/b", "x/a", TCP, 81, true, false},
		{"y/c", "x/a", TCP, 80, false, false},
		{"y/c", "x/a", TCP, 80, true, false},
	})

	n.uninstall(b)
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		if got := n.save(fam); got != before[fam] {
			t.Errorf("%s after uninstall differs from before:\n--- before\n%s\n--- after\n%s", fam, before[fam], got)
		}
	}
	if got := n.ns.run(t, "nft", "list", "table", "inet", "other"); got != otherTable {
		t.Errorf("uninstall changed nft table inet other:\n%s", got)
	}
	n.uninstall(newBackend(t)) // idempotent
	n.expect("uninstalled", []check{{"y/c", "x/a", TCP, 80, false, true}})
}

func foreignOf(save string) string {
	var keep []string
	for _, l := range strings.Split(save, "\n") {
		if !strings.Contains(l, iptables.ChainPrefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func oursIn(t *testing.T, ns *namespace, fam iptables.Family) string {
	bin := "iptables-save"
	if fam == iptables.IPv6 {
		bin = "ip6tables-save"
	}
	var keep []string
	for _, l := range strings.Split(saveCounter.ReplaceAllString(ns.run(t, bin), "[0:0]"), "\n") {
		if strings.Contains(l, iptables.ChainPrefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
