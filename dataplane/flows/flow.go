// Package flows is the agent's view of traffic: flows observed by the
// kernel (dataplane/flowlog), attributed to pods, workloads, policies and
// intents, aggregated with bounded memory and reported to the API server
// (NodeFlowReport) and to Hubble clients (dataplane/hubble).
package flows

import (
	"net/netip"
	"time"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// Endpoint is one side of a flow. For pods every field may be set; for
// peers that are not pods only IP is.
type Endpoint struct {
	IP        netip.Addr
	Namespace string
	Pod       string
	// Node is the node the pod runs on ("" for non-pods).
	Node string
	// WorkloadKind and WorkloadName name the pod's top owner (Deployment for
	// a ReplicaSet with pod-template-hash), or "Pod" and the pod's name.
	WorkloadKind string
	WorkloadName string
	// Labels are the pod's labels.
	Labels map[string]string
}

// IsPod tells whether the endpoint was resolved to a pod.
func (e Endpoint) IsPod() bool { return e.Pod != "" }

// Flow is one observation: the first packet of a new connection that a
// policy allowed, or a packet a policy dropped (or, in Audit mode, would
// have dropped).
type Flow struct {
	Time time.Time
	// Node is the node that observed it.
	Node      string
	Direction v1alpha1.FlowDirection
	Verdict   v1alpha1.FlowVerdict
	// Protocol is the IANA protocol number (6 TCP, 17 UDP, 132 SCTP, 1/58 ICMP).
	Protocol        uint8
	Source          Endpoint
	Destination     Endpoint
	SourcePort      uint16
	DestinationPort uint16
	// Policies are the deciding NetworkPolicies, "namespace/name": the one
	// that allowed it, or every policy selecting the pod for Dropped and
	// Audited. Audit-mode policies compiled by the agent carry the name the
	// controller would give them.
	Policies []string
	// Intents are the ServiceIntents ("namespace/name") of those policies.
	Intents []string
}

// Sink receives attributed flows. Observe must not block.
type Sink interface {
	Observe(f *Flow)
}
