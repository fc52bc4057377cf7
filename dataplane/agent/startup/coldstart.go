// Package startup programs a node's kernel when the agent starts, before
// anything needs the API server: the state saved by the last agent
// (Restore), or, on a node with neither rules of ours nor a saved state,
// the cold-start ruleset (ColdStart). Neither makes the agent ready: only
// a sync from fresh caches does.
package startup

import (
	"context"
	"errors"
	"fmt"

	"github.com/palisade-dev/palisade/dataplane"
)

// ColdStartMode is what a node forwards between an agent's start and its
// first sync when the kernel holds no rules of ours and no saved state was
// restored: a brand-new node.
type ColdStartMode string

const (
	// ColdStartDeny drops every new forwarded connection (render.ColdStart)
	// until the first sync: pods on the node start isolated, as if every
	// one of them were selected by a default-deny policy in both
	// directions, and the first sync opens what policies allow.
	ColdStartDeny ColdStartMode = "deny"
	// ColdStartAllow programs nothing: until the first sync the node's
	// pods are not isolated at all (what a node without Palisade does).
	ColdStartAllow ColdStartMode = "allow"
)

// ParseColdStartMode parses the --cold-start flag.
func ParseColdStartMode(s string) (ColdStartMode, error) {
	switch m := ColdStartMode(s); m {
	case ColdStartDeny, ColdStartAllow:
		return m, nil
	}
	return "", fmt.Errorf("unknown cold-start mode %q: want %s or %s", s, ColdStartDeny, ColdStartAllow)
}

// ColdStartOutcome says what ColdStart did.
type ColdStartOutcome string

const (
	// ColdStartProgrammed: the node was bare and is now closed until the
	// first sync.
	ColdStartProgrammed ColdStartOutcome = "programmed"
	// ColdStartKept: rules of ours were already in the kernel (an agent
	// restart or crash, or a cold start that was never replaced): they stay
	// until the first sync (fail static).
	ColdStartKept ColdStartOutcome = "kept-existing-rules"
	// ColdStartSkipped: the mode is allow and the node holds no rules of
	// ours; nothing was programmed.
	ColdStartSkipped ColdStartOutcome = "skipped"
)

// ColdStart is called at start, after Restore found no saved state and
// before anything needs the API server: in deny mode, on a node whose
// kernel holds no rules of ours, it programs the backend's cold-start
// ruleset. It never replaces rules that are there, and it does not make
// the agent ready: only a sync does.
func ColdStart(ctx context.Context, backend dataplane.Backend, mode ColdStartMode) (ColdStartOutcome, error) {
	cs, ok := backend.(dataplane.ColdStarter)
	if !ok {
		if mode == ColdStartAllow {
			return ColdStartSkipped, nil
		}
		return "", fmt.Errorf("cold start: backend %T cannot deny before its first sync", backend)
	}
	installed, err := cs.Installed(ctx)
	if err != nil {
		return "", fmt.Errorf("cold start: look for rules of ours: %w", err)
	}
	if installed {
		return ColdStartKept, nil
	}
	if mode == ColdStartAllow {
		return ColdStartSkipped, nil
	}
	if err := cs.ColdStart(ctx); err != nil {
		if errors.Is(err, dataplane.ErrInstalled) {
			return ColdStartKept, nil
		}
		return "", err
	}
	return ColdStartProgrammed, nil
}
