package startup

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/statefile"
)

// Restore programs the state saved in path, if there is one, before the
// agent can reach the API server: after a node reboot the kernel holds no
// table and the pods would otherwise run unprotected until the caches sync.
// A missing file is not an error (first start on a node); a file that fails
// its checks is rejected whole and reported. Restore never marks the agent
// ready: readiness waits for a sync from fresh caches.
//
// Rules of ours already in the kernel (an agent restart or crash, not a
// reboot) are kept and nothing is restored: the file is written after each
// commit, so the kernel is never older than it and may be newer (a crash
// between the commit and the write), and programming it would cost a full
// commit on the way to the first sync.
func Restore(ctx context.Context, backend dataplane.Backend, path string) (restored bool, err error) {
	if cs, ok := backend.(dataplane.ColdStarter); ok {
		installed, err := cs.Installed(ctx)
		if err != nil {
			return false, fmt.Errorf("look for rules of ours: %w", err)
		}
		if installed {
			return false, nil
		}
	}
	f := &statefile.File{Path: path}
	st, err := f.Load()
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load state file: %w", err)
	}
	if _, err := backend.Sync(ctx, st); err != nil {
		return false, fmt.Errorf("program the saved state: %w", err)
	}
	return true, nil
}
