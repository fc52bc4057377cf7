package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/statefile"
	"github.com/palisade-dev/palisade/internal/policy"
)

// ConnCutter deletes the conntrack entries a state denies
// (dataplane/conntrack.Cutter).
type ConnCutter interface {
	Cut(ctx context.Context, st *policy.State) (int, error)
}

// StateSaver persists a committed state (dataplane/statefile.File).
type StateSaver interface {
	Save(st *policy.State) error
}

// afterCommit runs what follows a committed sync: cut the connections the
// new state denies and persist the state. Neither fails the sync: the rules
// are in the kernel already, and both are retried by the next change.
func (a *Agent) afterCommit(ctx context.Context, st *policy.State) {
	logger := log.FromContext(ctx)
	// Only a changed state can deny a connection the previous one allowed,
	// and a cut dumps the whole conntrack table: skip it otherwise. The
	// first sync after a start always cuts, since the kernel may hold
	// connections from before a crash that the current state denies.
	changed := a.lastCommitted == nil || !reflect.DeepEqual(a.lastCommitted, st)
	if a.Cutter != nil && changed {
		n, err := a.Cutter.Cut(ctx, st)
		switch {
		case err != nil:
			logger.Error(err, "cut connections the new policy denies")
		case n > 0:
			connectionsCut.Add(float64(n))
			logger.Info("cut connections the new policy denies", "connections", n)
		}
	}
	if a.StateFile != nil && changed {
		if err := a.StateFile.Save(st); err != nil {
			logger.Error(err, "save the state file")
		}
	}
	cp := *st
	a.lastCommitted = &cp
}

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
// commit on the way to the first sync (issue 7, scenario 1).
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
