package agent

import (
	"context"
	"reflect"

	"sigs.k8s.io/controller-runtime/pkg/log"

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
			a.Metrics.ConnectionsCut(n)
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
