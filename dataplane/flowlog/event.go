// Package flowlog reads the kernel's verdict log: the NFLOG messages that
// Palisade's rules emit (rate-limited) for new connections a policy allowed
// and for packets a policy dropped or, in Audit mode, would have dropped.
// It decodes each message into an Event naming the deciding policies.
package flowlog

import (
	"net/netip"
	"time"

	"github.com/palisade-dev/palisade/internal/policy"
)

// Event is one logged packet, decoded.
type Event struct {
	Time      time.Time
	Verdict   policy.LogVerdict
	Direction policy.Direction
	// Protocol is the IANA protocol number.
	Protocol uint8
	Src, Dst netip.Addr
	// SrcPort and DstPort are 0 for protocols without ports.
	SrcPort, DstPort uint16
	// Policies are the policy keys ("namespace/name") that decided: the
	// allowing policy, or the policies of the pod's group for drops/audits.
	// Empty when the log prefix no longer maps to the current state.
	Policies []string
}
