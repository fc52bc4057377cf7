package statefile

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// A node reboot empties the kernel's tables; the agent that comes up
// without an API server restores the saved state. The restored table must
// be the one the last sync programmed.
func TestRestoreAfterFlushKernel(t *testing.T) {
	testenv.RequireRoot(t)
	ns := netnstest.NewPrefixed(t, "prl", "sf")
	listTable := func() string {
		t.Helper()
		return ns.Run(t, "nft", "list", "table", "inet", render.TableName)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent-state.json")
	for _, seed := range []uint64{11, 12} {
		st := randomState(seed)
		// From an empty table, as after a reboot: nft lists objects in the
		// order they were created, and a full rebuild over the previous
		// seed's table keeps the sets both states have where they were.
		ns.Run(t, "nft", "flush", "ruleset")
		if _, err := nft.New(nft.WithNetNSFd(ns.Fd)).Sync(ctx, st); err != nil {
			t.Fatal(err)
		}
		before := listTable()
		if err := (&File{Path: path}).Save(st); err != nil {
			t.Fatal(err)
		}
		ns.Run(t, "nft", "flush", "ruleset")
		if out, err := ns.Try("nft", "list", "ruleset"); err != nil || len(out) != 0 {
			t.Fatalf("ruleset not empty after flush: %v\n%s", err, out)
		}
		loaded, err := (&File{Path: path}).Load()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nft.New(nft.WithNetNSFd(ns.Fd)).Sync(ctx, loaded); err != nil {
			t.Fatal(err)
		}
		if after := listTable(); after != before {
			t.Fatalf("seed %d: restored table differs:\nbefore:\n%s\nafter:\n%s", seed, before, after)
		}
	}
}
