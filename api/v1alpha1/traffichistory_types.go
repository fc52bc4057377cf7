package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrafficHistoryName is the name of the one TrafficHistory the controller
// keeps in each namespace.
const TrafficHistoryName = "traffic"

// TrafficHistory bounds (enforced by the controller, checked by the schema).
const (
	// MaxHistoryCalls is the most calls one TrafficHistory can hold. At about
	// 600 bytes a call it keeps the object well under etcd's 1.5 MiB limit.
	MaxHistoryCalls = 2000
)

// PeerKind says what a call's caller or callee is.
// +kubebuilder:validation:Enum=Workload;Node;External
type PeerKind string

const (
	// PeerWorkload: a pod, identified by its owning workload (or, for a
	// pod without an owner, by its labels).
	PeerWorkload PeerKind = "Workload"
	// PeerNode: a node's own address: the kubelet, or a hostNetwork pod.
	PeerNode PeerKind = "Node"
	// PeerExternal: an address that is neither a pod nor a node.
	PeerExternal PeerKind = "External"
)

// CallPeer is the stable identity of one side of a call: what survives pod
// restarts, rollouts and rescheduling.
type CallPeer struct {
	// kind is Workload, Node or External.
	// +required
	Kind PeerKind `json:"kind"`

	// namespace of the workload (Workload only).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// workloadKind is the kind of the pod's top owner (Deployment,
	// StatefulSet, DaemonSet, CronJob, Job), or Pod for a pod without one
	// (Workload only).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	WorkloadKind string `json:"workloadKind,omitempty"`

	// workloadName is the name of that owner; empty for a pod without an
	// owner, whose labels identify it instead (Workload only).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	WorkloadName string `json:"workloadName,omitempty"`

	// service is the Service in the workload's namespace that selects the
	// pods, when one does (the first by name when several do).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Service string `json:"service,omitempty"`

	// labels identify a pod without an owner: its labels without per-pod
	// ones (Workload with workloadKind Pod only), at most 16.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Labels map[string]string `json:"labels,omitempty"`

	// nodeName is the node whose address it is (Node only).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName,omitempty"`

	// cidr is the external address as a /32 or /128, or the /24 or /64 it
	// was collapsed into when the namespace saw more external addresses than
	// the controller keeps one by one (External only).
	// +optional
	// +kubebuilder:validation:MaxLength=49
	CIDR string `json:"cidr,omitempty"`
}

// ObservedCall aggregates the connections observed from one caller to one
// callee on one port and protocol that got the same verdict.
type ObservedCall struct {
	// caller is the client side.
	// +required
	Caller CallPeer `json:"caller"`

	// callee is the server side.
	// +required
	Callee CallPeer `json:"callee"`

	// protocol is TCP, UDP or SCTP.
	// +required
	Protocol Protocol `json:"protocol"`

	// port is the destination port.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// verdict is Allowed, Dropped, Audited or NotPoliced.
	// +required
	Verdict FlowVerdict `json:"verdict"`

	// intents are the ServiceIntents (namespace/name) whose policies decided
	// the last of these connections.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=127
	Intents []string `json:"intents,omitempty"`

	// count is the number of connections (allowed, not policed) or packets
	// (dropped, audited; after the kernel's rate limit) observed.
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

// TrafficHistoryStatus is what the controller has observed in the namespace.
type TrafficHistoryStatus struct {
	// retention is how long a call is kept after it was last seen.
	// +optional
	Retention *metav1.Duration `json:"retention,omitempty"`

	// maxCalls is the bound on calls in force when the history was written.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2000
	MaxCalls int32 `json:"maxCalls,omitempty"`

	// calls are the observed calls whose callee or caller is in this
	// namespace, ordered by callee, caller, port, protocol and verdict, so
	// that a rewrite changes only what changed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2000
	Calls []ObservedCall `json:"calls,omitempty"`

	// callCount is the number of calls held (for printer columns).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2000
	CallCount int32 `json:"callCount,omitempty"`

	// callsEvicted counts the calls dropped to stay within maxCalls, least
	// recently seen first, since the history was created.
	// +optional
	// +kubebuilder:validation:Minimum=0
	CallsEvicted int64 `json:"callsEvicted,omitempty"`

	// callsExpired counts the calls dropped because they were not seen
	// within the retention window, since the history was created.
	// +optional
	// +kubebuilder:validation:Minimum=0
	CallsExpired int64 `json:"callsExpired,omitempty"`

	// since is when the oldest call still held was first seen.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`

	// updatedAt is when the controller last folded flow reports into it.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`
}

// TrafficHistory is the durable, bounded record of the calls observed to and
// from one namespace's pods, kept by the controller from the agents' flow
// reports (one per namespace, named TrafficHistoryName). It survives restarts
// of every component; `kubectl palisade suggest` writes intents from it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=th,categories=palisade
// +kubebuilder:printcolumn:name="Calls",type=integer,JSONPath=`.status.callCount`
// +kubebuilder:printcolumn:name="Evicted",type=integer,JSONPath=`.status.callsEvicted`
// +kubebuilder:printcolumn:name="Since",type=date,JSONPath=`.status.since`
// +kubebuilder:printcolumn:name="Updated",type=date,JSONPath=`.status.updatedAt`
type TrafficHistory struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// status is the history, written by the controller only.
	// +optional
	Status TrafficHistoryStatus `json:"status,omitempty"`
}

// TrafficHistoryList is a list of TrafficHistories.
// +kubebuilder:object:root=true
type TrafficHistoryList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the list's metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the histories.
	Items []TrafficHistory `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TrafficHistory{}, &TrafficHistoryList{})
}
