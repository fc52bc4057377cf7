package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// IntentMode says whether an intent is enforced or only reported.
// +kubebuilder:validation:Enum=Enforce;Audit
type IntentMode string

const (
	// ModeEnforce writes NetworkPolicies that drop what the intent does not allow.
	ModeEnforce IntentMode = "Enforce"
	// ModeAudit writes no NetworkPolicy for the intent; the agents compile it
	// as log-and-accept, reporting what Enforce would drop, never dropping.
	ModeAudit IntentMode = "Audit"
)

// WorkloadKind is a kind of workload whose pod template selects pods.
// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet;ReplicaSet;Job;CronJob
type WorkloadKind string

// Workload kinds a workloadRef may name.
const (
	WorkloadDeployment  WorkloadKind = "Deployment"
	WorkloadStatefulSet WorkloadKind = "StatefulSet"
	WorkloadDaemonSet   WorkloadKind = "DaemonSet"
	WorkloadReplicaSet  WorkloadKind = "ReplicaSet"
	WorkloadJob         WorkloadKind = "Job"
	WorkloadCronJob     WorkloadKind = "CronJob"
)

// Protocol is a transport protocol a NetworkPolicy can match.
// +kubebuilder:validation:Enum=TCP;UDP;SCTP
type Protocol string

// LabelValue is a Kubernetes label value.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// LabelSelectorOperator relates a label key to its values.
// +kubebuilder:validation:Enum=In;NotIn;Exists;DoesNotExist
type LabelSelectorOperator string

// LabelSelector selects objects by their labels, as metav1.LabelSelector does,
// with bounds the API server can check. An empty selector selects everything.
type LabelSelector struct {
	// matchLabels selects objects whose labels hold all these key/value pairs.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.indexOf('/') <= 253)",message="the prefix of a label key must be at most 253 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="keys must be valid label keys ([prefix/]name)"
	MatchLabels map[string]LabelValue `json:"matchLabels,omitempty"`

	// matchExpressions are label requirements that must all hold.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one requirement of a LabelSelector.
// +kubebuilder:validation:XValidation:rule="(self.operator == 'In' || self.operator == 'NotIn') == (has(self.values) && size(self.values) > 0)",message="values must be non-empty for In and NotIn and empty for Exists and DoesNotExist",fieldPath=".values"
type LabelSelectorRequirement struct {
	// key is the label key the requirement applies to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self.indexOf('/') <= 253",message="the prefix of a label key must be at most 253 characters"
	Key string `json:"key"`

	// operator is In, NotIn, Exists or DoesNotExist.
	// +required
	Operator LabelSelectorOperator `json:"operator"`

	// values are the label values for In and NotIn.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Values []LabelValue `json:"values,omitempty"`
}

// LocalServiceReference names a Service in the intent's namespace.
type LocalServiceReference struct {
	// name of the Service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
}

// LocalWorkloadReference names a workload in the intent's namespace.
type LocalWorkloadReference struct {
	// kind of the workload: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob.
	// +required
	Kind WorkloadKind `json:"kind"`

	// name of the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
}

// ServiceReference names a Service, by default in the intent's namespace.
type ServiceReference struct {
	// name of the Service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// namespace of the Service; the intent's namespace when omitted.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// WorkloadReference names a workload, by default in the intent's namespace.
type WorkloadReference struct {
	// kind of the workload: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob.
	// +required
	Kind WorkloadKind `json:"kind"`

	// name of the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// namespace of the workload; the intent's namespace when omitted.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// CIDR is an IPv4 or IPv6 CIDR in canonical form (no host bits set).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=43
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a valid CIDR, such as 10.0.0.0/8 or 2001:db8::/32"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || string(cidr(self).masked()) == self",message="must be in canonical form: no host bits set, IPv6 lower-case and compressed"
type CIDR string

// IPBlock is a range of IP addresses, minus some sub-ranges.
// +kubebuilder:validation:XValidation:rule="!has(self.except) || !isCIDR(self.cidr) || self.except.all(e, !isCIDR(e) || cidr(e).ip().family() == cidr(self.cidr).ip().family())",message="except entries must be of the same IP family as cidr",fieldPath=".except"
// +kubebuilder:validation:XValidation:rule="!has(self.except) || !isCIDR(self.cidr) || self.except.all(e, !isCIDR(e) || cidr(e).ip().family() != cidr(self.cidr).ip().family() || (cidr(self.cidr).containsCIDR(cidr(e)) && cidr(e).prefixLength() > cidr(self.cidr).prefixLength()))",message="except entries must lie strictly inside cidr",fieldPath=".except"
// +kubebuilder:validation:XValidation:rule="!has(self.except) || self.except.all(e, self.except.exists_one(f, f == e))",message="except entries must be unique",fieldPath=".except"
type IPBlock struct {
	// cidr is the range of addresses, e.g. 203.0.113.0/24.
	// +required
	CIDR CIDR `json:"cidr"`

	// except lists sub-ranges of cidr that are not allowed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Except []CIDR `json:"except,omitempty"`
}

// IntentPort is a port, or range of ports, a caller may reach.
// +kubebuilder:validation:XValidation:rule="!has(self.endPort) || type(self.port) == int",message="endPort may only be set with a numeric port",fieldPath=".endPort"
// +kubebuilder:validation:XValidation:rule="!has(self.endPort) || type(self.port) != int || self.endPort >= self.port",message="endPort must be greater than or equal to port",fieldPath=".endPort"
type IntentPort struct {
	// port is a port number (1-65535) or the name of a container port (an
	// IANA service name: up to 15 lower-case letters, digits and '-').
	// +required
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1 && self <= 65535) : (self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.matches('[a-z]') && !self.contains('--'))",message="must be a port number from 1 to 65535 or an IANA service name"
	Port intstr.IntOrString `json:"port"`

	// endPort, with a numeric port, makes the range port..endPort.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	EndPort *int32 `json:"endPort,omitempty"`

	// protocol is TCP (the default), UDP or SCTP.
	// +optional
	// +kubebuilder:default=TCP
	Protocol Protocol `json:"protocol,omitempty"`
}

// Target says which pods an intent protects: exactly one of its fields is set.
// +kubebuilder:validation:XValidation:rule="(has(self.serviceRef) ? 1 : 0) + (has(self.workloadRef) ? 1 : 0) + (has(self.podSelector) ? 1 : 0) == 1",message="exactly one of serviceRef, workloadRef or podSelector must be set"
type Target struct {
	// serviceRef names a Service in the intent's namespace; its spec.selector picks the pods.
	// +optional
	ServiceRef *LocalServiceReference `json:"serviceRef,omitempty"`

	// workloadRef names a workload in the intent's namespace; its pod template's selector picks the pods.
	// +optional
	WorkloadRef *LocalWorkloadReference `json:"workloadRef,omitempty"`

	// podSelector picks the pods in the intent's namespace directly.
	// +optional
	PodSelector *LabelSelector `json:"podSelector,omitempty"`
}

// Caller is a peer allowed to reach the target: exactly one of serviceRef,
// workloadRef, podSelector/namespaceSelector or ipBlock is set.
// +kubebuilder:validation:XValidation:rule="(has(self.serviceRef) ? 1 : 0) + (has(self.workloadRef) ? 1 : 0) + (has(self.podSelector) || has(self.namespaceSelector) ? 1 : 0) + (has(self.ipBlock) ? 1 : 0) == 1",message="exactly one of serviceRef, workloadRef, podSelector/namespaceSelector or ipBlock must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, string(q.port) == string(p.port) && q.protocol == p.protocol))",message="ports must not repeat a port and protocol",fieldPath=".ports"
type Caller struct {
	// name labels the caller in status and events; it defaults to the
	// referenced object's name (callers-<index> for selectors and IP blocks).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// serviceRef names a Service whose selector picks the calling pods.
	// +optional
	ServiceRef *ServiceReference `json:"serviceRef,omitempty"`

	// workloadRef names a workload whose pods call.
	// +optional
	WorkloadRef *WorkloadReference `json:"workloadRef,omitempty"`

	// podSelector picks the calling pods, in the intent's namespace unless
	// namespaceSelector is set.
	// +optional
	PodSelector *LabelSelector `json:"podSelector,omitempty"`

	// namespaceSelector picks the namespaces of the calling pods (all their
	// pods when podSelector is absent).
	// +optional
	NamespaceSelector *LabelSelector `json:"namespaceSelector,omitempty"`

	// ipBlock allows callers by address, for peers outside the cluster.
	// +optional
	IPBlock *IPBlock `json:"ipBlock,omitempty"`

	// ports the caller may reach on the target; all ports when omitted.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Ports []IntentPort `json:"ports,omitempty"`
}

// ServiceIntentSpec declares which callers may reach a service.
type ServiceIntentSpec struct {
	// target is the service the intent protects.
	// +required
	Target Target `json:"target"`

	// mode is Enforce (the default) or Audit.
	// +optional
	// +kubebuilder:default=Enforce
	Mode IntentMode `json:"mode,omitempty"`

	// callers may reach the target; nothing else may (an empty list denies all ingress).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:XValidation:rule="self.all(c, !has(c.name) || self.exists_one(d, has(d.name) && d.name == c.name))",message="caller names must be unique"
	Callers []Caller `json:"callers,omitempty"`
}

// CallerStatus reports how one caller resolved.
type CallerStatus struct {
	// name of the caller (its name field, or the default).
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// kind of peer: Service, a workload kind, PodSelector or IPBlock.
	// +required
	// +kubebuilder:validation:MaxLength=32
	Kind string `json:"kind"`

	// resolved is true when the caller resolved to pods or addresses and is allowed.
	// +required
	Resolved bool `json:"resolved"`

	// message explains an unresolved caller.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// observed is true when traffic from this caller to the target was
	// allowed within the observation window.
	// +optional
	Observed bool `json:"observed"`

	// lastSeen is when a connection from this caller was last observed (kept
	// across windows, so that unused callers can be told apart).
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`

	// connections counts this caller's connections in the observation window.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Connections int64 `json:"connections,omitempty"`
}

// UndeclaredCaller is an observed caller of the target that no caller entry
// allows.
type UndeclaredCaller struct {
	// source identifies the caller (workload, pod, address).
	// +required
	Source FlowEndpoint `json:"source"`

	// protocol is TCP, UDP or SCTP.
	// +required
	Protocol Protocol `json:"protocol"`

	// port is the destination port the caller tried.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// verdict is Dropped (Enforce mode, or another policy dropped it), Audited
	// (Audit mode: let through, Enforce would drop it) or Allowed (another
	// policy allowed it, not this intent).
	// +required
	Verdict FlowVerdict `json:"verdict"`

	// count is the number of observations in the window, over all nodes.
	// +required
	// +kubebuilder:validation:Minimum=0
	Count int64 `json:"count"`

	// firstSeen is the earliest observation in the window.
	// +required
	FirstSeen metav1.Time `json:"firstSeen"`

	// lastSeen is the latest observation.
	// +required
	LastSeen metav1.Time `json:"lastSeen"`
}

// EnforcementStatus says on how many nodes the intent's current generation
// is programmed.
type EnforcementStatus struct {
	// generation is the intent generation the counts refer to.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Generation int64 `json:"generation,omitempty"`

	// nodesDesired is the number of nodes that run target pods and so must
	// program the intent's policies.
	// +optional
	// +kubebuilder:validation:Minimum=0
	NodesDesired int32 `json:"nodesDesired"`

	// nodesProgrammed is how many of them report the current generation in
	// their kernel.
	// +optional
	// +kubebuilder:validation:Minimum=0
	NodesProgrammed int32 `json:"nodesProgrammed"`

	// changedAt is when the controller first saw the current generation.
	// +optional
	ChangedAt *metav1.MicroTime `json:"changedAt,omitempty"`

	// programmedAt is when the last of the desired nodes programmed it.
	// +optional
	ProgrammedAt *metav1.MicroTime `json:"programmedAt,omitempty"`

	// latency is programmedAt minus changedAt: how long the change took to be
	// in force everywhere.
	// +optional
	Latency *metav1.Duration `json:"latency,omitempty"`
}

// ServiceIntentStatus is what the controller observed and did.
type ServiceIntentStatus struct {
	// observedGeneration is the last spec generation reconciled without
	// error; each condition carries the generation it was computed for.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are Ready, Resolved, PolicyApplied, Enforced and
	// TrafficConforms (the Condition* constants).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// target describes the resolved target, e.g. Service/orders.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Target string `json:"target,omitempty"`

	// selectedPods is the number of pods the target selects.
	// +optional
	// +kubebuilder:validation:Minimum=0
	SelectedPods int32 `json:"selectedPods"`

	// resolvedCallers reads "resolved/declared", e.g. 3/4.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	ResolvedCallers string `json:"resolvedCallers,omitempty"`

	// networkPolicies lists the generated NetworkPolicies as namespace/name.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=317
	NetworkPolicies []string `json:"networkPolicies,omitempty"`

	// callers reports each caller's resolution and observed traffic, in spec order.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Callers []CallerStatus `json:"callers,omitempty"`

	// observedCallers reads "observed/declared", e.g. 2/3: how many declared
	// callers were seen calling within the window.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	ObservedCallers string `json:"observedCallers,omitempty"`

	// denied is the number of observations of undeclared callers in the window
	// (dropped, or audited in Audit mode).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Denied int64 `json:"denied"`

	// undeclaredCallers are observed callers no caller entry allows, the top
	// 20 by count.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	UndeclaredCallers []UndeclaredCaller `json:"undeclaredCallers,omitempty"`

	// undeclaredCallersTotal is the number of distinct undeclared callers,
	// including those left out of undeclaredCallers.
	// +optional
	// +kubebuilder:validation:Minimum=0
	UndeclaredCallersTotal int32 `json:"undeclaredCallersTotal,omitempty"`

	// unusedCallers names declared callers not observed within the unused
	// window (default 24h): candidates to remove.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	UnusedCallers []string `json:"unusedCallers,omitempty"`

	// enforcement says on how many nodes the current generation is programmed.
	// +optional
	Enforcement *EnforcementStatus `json:"enforcement,omitempty"`
}

// ServiceIntent says "these callers may reach this service". The controller
// turns it into NetworkPolicies: default-deny ingress for the target, open
// exactly to its callers.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=si,categories=palisade
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.status.target`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Callers",type=string,JSONPath=`.status.resolvedCallers`
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.selectedPods`
// +kubebuilder:printcolumn:name="Observed",type=string,JSONPath=`.status.observedCallers`
// +kubebuilder:printcolumn:name="Denied",type=integer,JSONPath=`.status.denied`
// +kubebuilder:printcolumn:name="Enforced",type=string,JSONPath=`.status.conditions[?(@.type=="Enforced")].status`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (at most 63 characters): it becomes a label value"
// +kubebuilder:validation:XValidation:rule="!(self.metadata.name in ['default-deny', 'baseline'])",message="metadata.name must not be default-deny or baseline: the controller names the zero-trust policies palisade-default-deny and palisade-baseline"
type ServiceIntent struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the intent.
	// +required
	Spec ServiceIntentSpec `json:"spec"`

	// status is what the controller observed.
	// +optional
	Status ServiceIntentStatus `json:"status,omitempty"`
}

// ServiceIntentList is a list of ServiceIntents.
// +kubebuilder:object:root=true
type ServiceIntentList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the list's metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ServiceIntents.
	Items []ServiceIntent `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ServiceIntent{}, &ServiceIntentList{})
}
