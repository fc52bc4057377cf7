package compiler

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Input is one intent with its references resolved to selectors.
type Input struct {
	// Name and Namespace are the intent's.
	Name      string
	Namespace string
	// Generation is the intent's metadata.generation. Every policy carries it
	// in LabelIntentGeneration, so that agents can report which generation
	// they programmed; 0 (unknown) leaves the label out.
	Generation int64
	// Owner, when set, becomes the owner reference of the policies that live
	// in the intent's namespace (owner references cannot cross namespaces).
	Owner *metav1.OwnerReference
	// Target selects the protected pods in Namespace; nil means the target did
	// not resolve, and then nothing is generated (there is nothing to protect
	// and nothing may be opened).
	Target *metav1.LabelSelector
	// Callers are the declared callers in spec order.
	Callers []Caller
}

// Caller is one resolved caller. Exactly one of the peer forms is set:
// PodSelector/NamespaceSelector (pods), or IPBlock (addresses).
type Caller struct {
	// Name identifies the caller (unique within the intent after Normalize).
	Name string
	// Resolved is false when a reference did not resolve: the caller is
	// granted nothing (fail closed).
	Resolved bool
	// Namespace holds the caller's pods when NamespaceSelector is nil.
	Namespace string
	// PodSelector selects the caller's pods; nil with a NamespaceSelector
	// means every pod of the selected namespaces.
	PodSelector *metav1.LabelSelector
	// NamespaceSelector selects the namespaces of the caller's pods.
	NamespaceSelector *metav1.LabelSelector
	// IPBlock allows callers by address.
	IPBlock *networkingv1.IPBlock
	// Ports the caller may reach; nil means all ports.
	Ports []Port
	// EgressNamespaces are the zero-trust namespaces the caller's pods live
	// in; each gets an egress policy that lets those pods reach the target.
	EgressNamespaces []string
}

// Port is one port or port range.
type Port struct {
	// Port is a number or a named container port.
	Port intstr.IntOrString
	// EndPort, with a numeric Port, ends the range.
	EndPort *int32
	// Protocol is TCP when empty.
	Protocol corev1.Protocol
}

// DNSConfig says where cluster DNS runs, for the baseline egress policy of
// zero-trust namespaces.
type DNSConfig struct {
	// Namespace holds the DNS pods.
	Namespace string
	// PodSelector selects the DNS pods.
	PodSelector map[string]string
	// Ports are the DNS ports, e.g. 53/UDP and 53/TCP.
	Ports []Port
}
