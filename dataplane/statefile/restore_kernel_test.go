package statefile

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/palisade-dev/palisade/internal/testenv"

	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
)

// A node reboot empties the kernel's tables; the agent that comes up
// without an API server restores the saved state. The restored table must
// be the one the last sync programmed.
func TestRestoreAfterFlushKernel(t *testing.T) {
	testenv.RequireRoot(t)
	name := fmt.Sprintf("prl-sf-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	nsf, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nsf.Close() })
	listTable := func() string {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", name, "nft", "list", "table", "inet", render.TableName).CombinedOutput()
		if err != nil {
			t.Fatalf("nft list table: %v\n%s", err, out)
		}
		return string(out)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent-state.json")
	for _, seed := range []uint64{11, 12} {
		st := randomState(seed)
		if _, err := nft.New(nft.WithNetNSFd(int(nsf.Fd()))).Sync(ctx, st); err != nil {
			t.Fatal(err)
		}
		before := listTable()
		if err := (&File{Path: path}).Save(st); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ip", "netns", "exec", name, "nft", "flush", "ruleset").CombinedOutput(); err != nil {
			t.Fatalf("nft flush ruleset: %v\n%s", err, out)
		}
		if out, err := exec.Command("ip", "netns", "exec", name, "nft", "list", "ruleset").CombinedOutput(); err != nil || len(out) != 0 {
			t.Fatalf("ruleset not empty after flush: %v\n%s", err, out)
		}
		loaded, err := (&File{Path: path}).Load()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nft.New(nft.WithNetNSFd(int(nsf.Fd()))).Sync(ctx, loaded); err != nil {
			t.Fatal(err)
		}
		if after := listTable(); after != before {
			t.Fatalf("seed %d: restored table differs:\nbefore:\n%s\nafter:\n%s", seed, before, after)
		}
	}
}
