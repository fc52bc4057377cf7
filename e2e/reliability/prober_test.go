//go:build reliability

package reliability

import (
	"fmt"
	"time"

	"github.com/palisade-dev/palisade/internal/localcluster"
)

// startProber opens a new connection on every pair every 100ms in the
// background and counts forbidden successes and allowed failures.
func startProber() *localcluster.Prober {
	probePairs := make([]localcluster.ProbePair, 0, len(pairs))
	for _, pr := range pairs {
		probePairs = append(probePairs, localcluster.ProbePair{
			Name:    fmt.Sprintf("%s -> %s %s/%d", pr.From, pr.To, pr.Port.Protocol, pr.Port.Port),
			Allowed: pr.Allowed,
			Probe:   func() bool { return probeOne(pr) },
		})
	}
	return localcluster.StartProber(probePairs, 100*time.Millisecond)
}
