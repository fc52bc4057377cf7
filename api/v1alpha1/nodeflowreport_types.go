package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FlowVerdict is what the dataplane did with a flow.
// +kubebuilder:validation:Enum=Allowed;Dropped;Audited;NotPoliced
type FlowVerdict string

const (
	// VerdictAllowed: a policy allowed the new connection.
	VerdictAllowed FlowVerdict = "Allowed"
	// VerdictDropped: no policy allowed it and the dataplane dropped it.
	VerdictDropped FlowVerdict = "Dropped"
	// VerdictAudited: only Audit-mode policies select the pod and none of them
	// allows the flow; it was let through and would be dropped in Enforce mode.
	VerdictAudited FlowVerdict = "Audited"
	// VerdictNotPoliced: no policy selects the pod on the flow's side of the
	// decision, so the flow was let through; logged only for namespaces in
	// observation (LabelZeroTrust=ZeroTrustObserve).
	VerdictNotPoliced FlowVerdict = "NotPoliced"
)

// Report timing shared by agents and the controller.
const (
	// ReportHeartbeatIntervals: an agent rewrites an unchanged report after
	// this many report intervals, so that a live agent's report stays fresh.
	ReportHeartbeatIntervals = 6
	// ReportStaleIntervals: a report not rewritten for this many of its
	// intervals is stale (its agent is gone or cut off). It must exceed the
	// heartbeat, or idle nodes would look dead between heartbeats.
	ReportStaleIntervals = ReportHeartbeatIntervals + 2
)

// FlowDirection is the direction of a flow relative to the pod whose policy
// decided it.
// +kubebuilder:validation:Enum=Ingress;Egress
type FlowDirection string

const (
	// FlowIngress: the decision was made for the destination pod.
	FlowIngress FlowDirection = "Ingress"
	// FlowEgress: the decision was made for the source pod.
	FlowEgress FlowDirection = "Egress"
)

// FlowEndpoint identifies one side of a flow: a pod, by its workload, or a
// bare address for peers that are not pods.
type FlowEndpoint struct {
	// namespace of the pod; empty for non-pod peers.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// workloadKind is the kind of the pod's top owner (Deployment,
	// StatefulSet, DaemonSet, Job, CronJob, ReplicaSet) or Pod when it has none.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	WorkloadKind string `json:"workloadKind,omitempty"`

	// workloadName is the name of that owner (the pod's name for bare pods).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	WorkloadName string `json:"workloadName,omitempty"`

	// pod is the name of the last pod seen for this identity.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Pod string `json:"pod,omitempty"`

	// ip is the last address seen for this identity.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	IP string `json:"ip,omitempty"`

	// labels are the pod's labels without per-pod ones (pod-template-hash,
	// controller-revision-hash, statefulset pod name), at most 16.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Labels map[string]string `json:"labels,omitempty"`
}

// FlowRecord aggregates the flows that share source and destination identity,
// port, protocol, direction and verdict.
type FlowRecord struct {
	// source is the client side.
	// +required
	Source FlowEndpoint `json:"source"`

	// destination is the server side.
	// +required
	Destination FlowEndpoint `json:"destination"`

	// direction tells whose policy decided: the destination's (Ingress) or the
	// source's (Egress).
	// +required
	Direction FlowDirection `json:"direction"`

	// protocol is TCP, UDP or SCTP.
	// +required
	Protocol Protocol `json:"protocol"`

	// port is the destination port.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// verdict is Allowed, Dropped or Audited.
	// +required
	Verdict FlowVerdict `json:"verdict"`

	// policies are the NetworkPolicies (namespace/name) that decided: the one
	// that allowed the flow, or all that select the pod for a drop or audit.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=317
	Policies []string `json:"policies,omitempty"`

	// intents are the ServiceIntents (namespace/name) those policies belong to.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=127
	Intents []string `json:"intents,omitempty"`

	// count is the number of connections (allowed) or packets (dropped,
	// audited; after the kernel's rate limit) observed.
	// +required
	// +kubebuilder:validation:Minimum=0
	Count int64 `json:"count"`

	// firstSeen is when the first of them was observed.
	// +required
	FirstSeen metav1.Time `json:"firstSeen"`

	// lastSeen is when the last of them was observed.
	// +required
	LastSeen metav1.Time `json:"lastSeen"`
}

// ProgrammedIntent says which generation of an intent a node has programmed.
type ProgrammedIntent struct {
	// namespace of the intent.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// name of the intent.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// generation of the intent whose policies are in the node's kernel.
	// +required
	// +kubebuilder:validation:Minimum=0
	Generation int64 `json:"generation"`

	// mode the generation was programmed in.
	// +required
	Mode IntentMode `json:"mode"`

	// programmedAt is when the sync that first programmed this generation
	// committed, to the microsecond: enforcement latencies are well under a
	// second.
	// +required
	ProgrammedAt metav1.MicroTime `json:"programmedAt"`
}

// NodeFlowReportSpec is what one node's agent observed and programmed.
type NodeFlowReportSpec struct {
	// nodeName is the node the report is about (also the object's name).
	// +required
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`

	// windowStart is the start of the observation window the flows cover.
	// +required
	WindowStart metav1.Time `json:"windowStart"`

	// reportedAt is when the agent wrote this report.
	// +required
	ReportedAt metav1.Time `json:"reportedAt"`

	// intervalSeconds is the agent's report interval; a report older than
	// ReportStaleIntervals intervals is stale.
	// +required
	// +kubebuilder:validation:Minimum=1
	IntervalSeconds int32 `json:"intervalSeconds"`

	// flows are the aggregated flows of the window, most connections first.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=500
	Flows []FlowRecord `json:"flows,omitempty"`

	// flowsTruncated counts aggregated flows left out of this report for room.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FlowsTruncated int64 `json:"flowsTruncated,omitempty"`

	// observationsDropped counts observations the agent could not aggregate
	// (table full, socket overrun) since it started.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservationsDropped int64 `json:"observationsDropped,omitempty"`

	// intents are the intents whose policies select pods on this node, with
	// the generation in force.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2000
	Intents []ProgrammedIntent `json:"intents,omitempty"`
}

// NodeFlowReport is written by the agent of one node, at most once per
// report interval: the flows it observed and the intents it enforces. The
// controller aggregates all reports onto each ServiceIntent's status.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=nfr,categories=palisade
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Reported",type=date,JSONPath=`.spec.reportedAt`
type NodeFlowReport struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the report.
	// +required
	Spec NodeFlowReportSpec `json:"spec"`
}

// NodeFlowReportList is a list of NodeFlowReports.
// +kubebuilder:object:root=true
type NodeFlowReportList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the list's metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the reports.
	Items []NodeFlowReport `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NodeFlowReport{}, &NodeFlowReportList{})
}
