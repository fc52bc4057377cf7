package startup_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/dataplane/agent/internal/agenttest"
	"github.com/palisade-dev/palisade/dataplane/agent/startup"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/dataplane/statefile"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/testenv"
)

func TestParseColdStartMode(t *testing.T) {
	for in, want := range map[string]startup.ColdStartMode{"deny": startup.ColdStartDeny, "allow": startup.ColdStartAllow} {
		if got, err := startup.ParseColdStartMode(in); err != nil || got != want {
			t.Errorf("ParseColdStartMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Deny", "open"} {
		if _, err := startup.ParseColdStartMode(in); err == nil {
			t.Errorf("ParseColdStartMode(%q) accepted", in)
		}
	}
}

// TestColdStartDecides runs startup.ColdStart against the nftables backend in
// network namespaces: a bare node gets the cold-start table; a node with a
// table of ours (a synced one, or an earlier cold start) keeps it byte for
// byte; allow programs nothing; a backend that cannot cold start is an
// error, not a silent open node.
func TestColdStartDecides(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	table := func(ns *netnstest.NS) string {
		out, err := ns.Try("nft", "list", "table", "inet", render.TableName)
		if err != nil {
			return ""
		}
		return out
	}

	bare := netnstest.NewPrefixed(t, "pcs", "bare")
	got, err := startup.ColdStart(ctx, nft.New(nft.WithNetNSFd(bare.Fd)), startup.ColdStartDeny)
	if err != nil || got != startup.ColdStartProgrammed {
		t.Fatalf("bare node: %q, %v; want %q", got, err, startup.ColdStartProgrammed)
	}
	cold := table(bare)
	if !strings.Contains(cold, "chain "+render.ColdStartChain) {
		t.Fatalf("bare node after the cold start:\n%s", cold)
	}
	// A restarted agent finds its own cold start and keeps it.
	got, err = startup.ColdStart(ctx, nft.New(nft.WithNetNSFd(bare.Fd)), startup.ColdStartDeny)
	if err != nil || got != startup.ColdStartKept || table(bare) != cold {
		t.Errorf("second start: %q, %v, table changed: %v; want %q and the same table", got, err, table(bare) != cold, startup.ColdStartKept)
	}

	synced := netnstest.NewPrefixed(t, "pcs", "synced")
	if _, err := nft.New(nft.WithNetNSFd(synced.Fd)).Sync(ctx, &policy.State{}); err != nil {
		t.Fatal(err)
	}
	before := table(synced)
	got, err = startup.ColdStart(ctx, nft.New(nft.WithNetNSFd(synced.Fd)), startup.ColdStartDeny)
	if err != nil || got != startup.ColdStartKept {
		t.Errorf("synced node: %q, %v; want %q", got, err, startup.ColdStartKept)
	}
	if after := table(synced); after != before {
		t.Errorf("the cold start changed an existing table:\n%s\nwas\n%s", after, before)
	}

	open := netnstest.NewPrefixed(t, "pcs", "allow")
	got, err = startup.ColdStart(ctx, nft.New(nft.WithNetNSFd(open.Fd)), startup.ColdStartAllow)
	if err != nil || got != startup.ColdStartSkipped || table(open) != "" {
		t.Errorf("allow: %q, %v, table %q; want %q and no table", got, err, table(open), startup.ColdStartSkipped)
	}

	if _, err := startup.ColdStart(ctx, &agenttest.RecordingBackend{}, startup.ColdStartDeny); err == nil {
		t.Error("a backend without cold-start support was accepted in deny mode")
	}
}

// TestRestoreKeepsKernelRules: an agent restart finds its table in the
// kernel and keeps it byte for byte rather than programming the saved state
// (which may be older, and costs a full commit); after a reboot (no table)
// the saved state is programmed.
func TestRestoreKeepsKernelRules(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	ns := netnstest.NewPrefixed(t, "pcs", "restore")
	table := func() string {
		out, err := ns.Try("nft", "list", "table", "inet", render.TableName)
		if err != nil {
			return ""
		}
		return out
	}
	saved := &policy.State{
		NodeName: "node-a",
		Ingress:  []policy.Group{{Policies: []string{"x/p"}, Pods: []string{"x/a"}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}},
		Policies: []policy.PolicyRules{{Key: "x/p", IngressIsolating: true}},
	}
	path := filepath.Join(t.TempDir(), "agent-state.json")
	if err := (&statefile.File{Path: path}).Save(saved); err != nil {
		t.Fatal(err)
	}
	if _, err := nft.New(nft.WithNetNSFd(ns.Fd)).Sync(ctx, &policy.State{NodeName: "node-a"}); err != nil {
		t.Fatal(err)
	}
	newer := table()
	restored, err := startup.Restore(ctx, nft.New(nft.WithNetNSFd(ns.Fd)), path)
	if err != nil || restored {
		t.Fatalf("restart with a table of ours: restored %v, %v; want the table kept", restored, err)
	}
	if got := table(); got != newer {
		t.Fatalf("restart changed the kernel table:\n%s\nwas\n%s", got, newer)
	}

	ns.Run(t, "nft", "flush", "ruleset") // what a reboot leaves
	restored, err = startup.Restore(ctx, nft.New(nft.WithNetNSFd(ns.Fd)), path)
	if err != nil || !restored {
		t.Fatalf("reboot: restored %v, %v; want the saved state programmed", restored, err)
	}
	if got := table(); !strings.Contains(got, "10.0.0.1") {
		t.Errorf("after the restore the table lacks the saved pod:\n%s", got)
	}
}
