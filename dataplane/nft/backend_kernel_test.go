package nft_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

const node = pt.Node

func policies() []*networkingv1.NetworkPolicy {
	return []*networkingv1.NetworkPolicy{
		pt.Policy("x", "web", pt.Selecting(map[string]string{"app": "a"}),
			pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"}), pt.NamespacePeer(map[string]string{"team": "y"})), pt.TCP(80), pt.PortRange(corev1.ProtocolUDP, 5000, 5010)),
			pt.IngressRule(pt.Peers(pt.BlockPeer("10.0.0.0/8", "10.100.0.0/16"), pt.BlockPeer("::/0", "fd00:100::/48")), pt.NamedPort(corev1.ProtocolTCP, "http")),
			pt.IngressRule(pt.Peers(pt.BlockPeer("0.0.0.0/0")), pt.Port(corev1.ProtocolSCTP, 9)),
		),
		pt.Policy("x", "egress", pt.Selecting(nil),
			pt.EgressRule(pt.Peers(pt.NamespacePodPeer(map[string]string{}, map[string]string{"app": "a"})), pt.NamedPort(corev1.ProtocolTCP, "http"), pt.TCP(80)),
			pt.EgressRule(nil, pt.Port(corev1.ProtocolUDP, 53)),
		),
		pt.Policy("y", "all", pt.Selecting(nil), pt.IngressRule(nil)),
	}
}

// listTable lists table inet palisade in a canonical form: nft prints sets
// and chains in creation order, so the blocks are sorted by name (rules keep
// their order inside a chain).
func listTable(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	return canonical(ns.Run(t, "nft", "list", "table", "inet", render.TableName))
}

func canonical(listing string) string {
	var blocks []string
	var cur []string
	for _, line := range strings.Split(listing, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "\tset ") || strings.HasPrefix(line, "\tmap ") || strings.HasPrefix(line, "\tchain "):
			cur = []string{line}
		case cur != nil && line == "\t}":
			blocks = append(blocks, strings.Join(append(cur, line), "\n"))
			cur = nil
		case cur != nil:
			cur = append(cur, line)
		case trimmed != "" && trimmed != "}" && !strings.HasPrefix(trimmed, "table "):
			blocks = append(blocks, line)
		}
	}
	sort.Strings(blocks)
	return strings.Join(blocks, "\n")
}

// TestNetlinkMatchesText programs each golden ruleset through netlink in one
// namespace and loads its nft text in another: the kernel must hold the same
// table both ways, which checks the netlink encoding against nft itself.
func TestNetlinkMatchesText(t *testing.T) {
	testenv.RequireRoot(t)
	golden, _ := filepath.Glob("../render/testdata/*.nft")
	if len(golden) == 0 {
		t.Fatal("no golden rulesets")
	}
	states := map[string]*policy.State{
		"empty":    pt.ClusterState(pt.BasePods()),
		"deny-all": pt.ClusterState(pt.BasePods(), pt.Policy("x", "deny-all", pt.Types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))),
		"mixed":    pt.ClusterState(pt.BasePods(), policies()...),
	}
	for name, st := range states {
		t.Run(name, func(t *testing.T) {
			viaNetlink, viaText := netnstest.New(t, "nl"), netnstest.New(t, "tx")
			if _, err := nft.New(nft.WithNetNSFd(viaNetlink.Fd)).Sync(context.Background(), st); err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "rs.nft")
			if err := os.WriteFile(f, []byte(render.Render(st).Text()), 0o644); err != nil {
				t.Fatal(err)
			}
			viaText.Run(t, "nft", "-f", f)
			if a, b := listTable(t, viaNetlink), listTable(t, viaText); a != b {
				t.Fatalf("netlink and nft -f disagree:\n--- netlink\n%s\n--- nft -f\n%s", a, b)
			}
		})
	}
}

// TestIncrementalEqualsFull walks through a series of states with one
// backend (incremental syncs) and checks after each step that the kernel
// holds exactly what a fresh full rebuild of that state gives.
func TestIncrementalEqualsFull(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	pods := pt.BasePods()
	morePods := append(pt.BasePods(),
		pt.Pod("x", "b2", node, map[string]string{"app": "b"}, "10.100.1.3", "fd00:100::1:3"),
		pt.Pod("y", "d", "node-b", map[string]string{"app": "a"}, "10.100.2.4"))
	changed := policies()
	changed[0] = pt.Policy("x", "web", pt.Selecting(map[string]string{"app": "a"}),
		pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"})), pt.TCP(81)))
	steps := []struct {
		name string
		st   *policy.State
	}{
		{"start", pt.ClusterState(pods, policies()...)},
		{"pods added", pt.ClusterState(morePods, policies()...)},
		{"policy changed", pt.ClusterState(morePods, changed...)},
		{"policy removed", pt.ClusterState(morePods, changed[1:]...)},
		{"pods removed", pt.ClusterState(pods[:2], changed[1:]...)},
		{"everything back", pt.ClusterState(morePods, policies()...)},
		{"nothing", pt.ClusterState(nil)},
		{"again", pt.ClusterState(pods, policies()...)},
	}
	inc := netnstest.New(t, "inc")
	b := nft.New(nft.WithNetNSFd(inc.Fd))
	for i, s := range steps {
		stats, err := b.Sync(ctx, s.st)
		if err != nil {
			t.Fatalf("step %q: %v", s.name, err)
		}
		if stats.Full != (i == 0) {
			t.Errorf("step %q: full=%v", s.name, stats.Full)
		}
		ref := netnstest.New(t, "ref")
		if _, err := nft.New(nft.WithNetNSFd(ref.Fd)).Sync(ctx, s.st); err != nil {
			t.Fatalf("step %q reference: %v", s.name, err)
		}
		if a, want := listTable(t, inc), listTable(t, ref); a != want {
			t.Fatalf("step %q: incremental state differs from full rebuild:\n--- incremental\n%s\n--- full\n%s", s.name, a, want)
		}
	}
}

// TestFullRebuildReplacesForeignState: a new backend (a restarted agent)
// replaces whatever the table held, including chains and sets it does not
// know, and never touches other tables.
func TestFullRebuildReplacesForeignState(t *testing.T) {
	testenv.RequireRoot(t)
	ns := netnstest.New(t, "rep")
	ns.Run(t, "nft", "add table inet other; add chain inet other keep { type filter hook forward priority 0; }")
	ns.Run(t, "nft", "add table inet palisade; add chain inet palisade stale; add set inet palisade staleset { type ipv4_addr; }")
	st := pt.ClusterState(pt.BasePods(), policies()...)
	if _, err := nft.New(nft.WithNetNSFd(ns.Fd)).Sync(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	got := listTable(t, ns)
	if strings.Contains(got, "stale") {
		t.Errorf("stale objects survived the rebuild:\n%s", got)
	}
	ref := netnstest.New(t, "ref")
	if _, err := nft.New(nft.WithNetNSFd(ref.Fd)).Sync(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if want := listTable(t, ref); got != want {
		t.Errorf("rebuilt table differs from a fresh one")
	}
	if out := ns.Run(t, "nft", "list", "table", "inet", "other"); !strings.Contains(out, "chain keep") {
		t.Errorf("foreign table changed:\n%s", out)
	}
	if err := nft.New(nft.WithNetNSFd(ns.Fd)).Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out, err := ns.Try("nft", "list", "table", "inet", "palisade"); err == nil {
		t.Errorf("table still there after uninstall:\n%s", out)
	}
	if err := nft.New(nft.WithNetNSFd(ns.Fd)).Uninstall(context.Background()); err != nil {
		t.Errorf("second uninstall: %v", err)
	}
	if out := ns.Run(t, "nft", "list", "table", "inet", "other"); !strings.Contains(out, "chain keep") {
		t.Errorf("uninstall touched a foreign table:\n%s", out)
	}
}

// TestWithTable: a backend with another table name programs, cold-starts
// and uninstalls only that table, beside the default one.
func TestWithTable(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	ns := netnstest.New(t, "tbl")
	st := pt.ClusterState(pt.BasePods(), policies()...)
	if _, err := nft.New(nft.WithNetNSFd(ns.Fd)).Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	want := listTable(t, ns)
	other := nft.New(nft.WithNetNSFd(ns.Fd), nft.WithTable("palisade-other"))
	if err := other.ColdStart(ctx); err != nil {
		t.Fatal(err)
	}
	if out := ns.Run(t, "nft", "list", "table", "inet", "palisade-other"); !strings.Contains(out, render.ColdStartChain) {
		t.Errorf("cold start is not in the named table:\n%s", out)
	}
	if _, err := other.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	if got := canonical(ns.Run(t, "nft", "list", "table", "inet", "palisade-other")); got != want {
		t.Errorf("named table differs from the default one:\n--- named\n%s\n--- default\n%s", got, want)
	}
	if err := other.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := ns.Try("nft", "list", "table", "inet", "palisade-other"); err == nil {
		t.Errorf("named table still there after uninstall:\n%s", out)
	}
	if got := listTable(t, ns); got != want {
		t.Errorf("the default table changed:\n%s", got)
	}
}
