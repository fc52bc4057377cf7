package main

import (
	"github.com/palisade-dev/palisade/dataplane/agent/flowobserver"
	"github.com/palisade-dev/palisade/dataplane/flowlog"
	"github.com/palisade-dev/palisade/dataplane/verdictlog"
)

// defaultLogGroup is the NFLOG group of the rules' verdict log.
const defaultLogGroup = verdictlog.DefaultGroup

// newEventSource opens the kernel's verdict log in the agent's namespace and
// returns it with its count of lost observations.
func newEventSource(group uint16) (flowobserver.EventSource, func() uint64) {
	r := flowlog.NewReader(flowlog.Config{Group: group})
	return r, func() uint64 { return r.Stats().Lost }
}
