// Package dataplane holds what every enforcement backend shares: the Backend
// interface the agent drives. The policy model lives in internal/policy, the
// nftables backend in dataplane/nft, the agent's sync loop in
// dataplane/agent.
package dataplane

import (
	"context"
	"errors"

	"github.com/palisade-dev/palisade/internal/policy"
)

// Backend programs a node's kernel so that it enforces a policy.State.
//
// Implementations must make every Sync one atomic change (all of it or none
// of it reaches the kernel), must leave their rules in place when the
// process stops for any reason (fail closed), and must touch nothing outside
// their own table or chains.
type Backend interface {
	// Sync makes the kernel enforce st. After an error the next Sync must
	// rebuild everything from scratch.
	Sync(ctx context.Context, st *policy.State) (Stats, error)
	// Uninstall removes everything the backend ever programmed.
	Uninstall(ctx context.Context) error
}

// Stats describes what the kernel holds after a successful Sync; the agent
// exports it as metrics.
type Stats struct {
	// Rules is the number of rules in the backend's chains.
	Rules int
	// SetElements is the number of elements in its sets and maps.
	SetElements int
	// Full tells whether the sync rebuilt everything.
	Full bool
}

// ColdStarter is a Backend that can close a brand-new node before its first
// Sync: until the agent has synced once, a node
// without any rule of ours would forward every new connection to and from
// its pods.
type ColdStarter interface {
	// Installed tells whether the kernel holds anything of the backend's: a
	// table or chain that an earlier agent (or an earlier cold start) left.
	Installed(ctx context.Context) (bool, error)
	// ColdStart programs the cold-start ruleset (render.ColdStart): new
	// forwarded connections are dropped, established ones and the node's own
	// traffic pass. It never replaces rules of ours: when Installed would
	// say true it changes nothing and returns an error that wraps
	// ErrInstalled. The next Sync replaces it atomically, like any ruleset
	// of ours.
	ColdStart(ctx context.Context) error
}

// ErrInstalled is why ColdStart refused: the kernel already holds rules of
// the backend (fail static: the agent keeps what is there until it syncs).
var ErrInstalled = errors.New("rules of ours are already installed")
