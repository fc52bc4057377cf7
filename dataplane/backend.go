// Package dataplane holds what every enforcement backend shares: the Backend
// interface the agent drives. The policy model lives in dataplane/policy, the
// nftables backend in dataplane/nft, the agent's sync loop in
// dataplane/agent.
package dataplane

import (
	"context"

	"github.com/palisade-dev/palisade/dataplane/policy"
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
