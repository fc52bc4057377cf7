package policy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Input is everything Compute needs. Policies are the API objects as they
// are; pods and namespaces are reduced to the fields that matter.
type Input struct {
	// NodeName is the node whose pods are the targets.
	NodeName   string
	Pods       []Pod
	Namespaces []Namespace
	Policies   []*networkingv1.NetworkPolicy
	// AuditPolicies are NetworkPolicies the agent compiled from Audit-mode
	// intents. They may carry the namespace and name of a real policy: their
	// keys are AuditKey(namespace, name), so they never collide. See
	// "Audit policies" in the package documentation for what they do.
	AuditPolicies []*networkingv1.NetworkPolicy
}

// Pod is the part of a Pod that policy evaluation reads.
type Pod struct {
	Namespace   string
	Name        string
	Labels      map[string]string
	NodeName    string
	HostNetwork bool
	// Finished is true for pods in phase Succeeded or Failed.
	Finished bool
	// IPs holds the pod's addresses (status.podIPs), one per family at most.
	IPs   []netip.Addr
	Ports []ContainerPort
}

// ContainerPort is a declared container port; only named ones matter.
type ContainerPort struct {
	Name     string
	Protocol corev1.Protocol
	Port     int32
}

// Namespace is the part of a Namespace that selectors read.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Direction is the direction of traffic relative to a selected pod.
type Direction string

const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

// State is the desired enforcement state of one node. All slices are sorted
// so that equal inputs give deeply equal States.
type State struct {
	NodeName string
	// Ingress and Egress are the isolated local pods, grouped by the exact
	// sorted set of policies that select them in that direction.
	Ingress []Group
	Egress  []Group
	// Policies holds the rules of every policy that appears in a group,
	// sorted by Key.
	Policies []PolicyRules
	// Errors lists malformed parts of policies; each one was made to match
	// nothing.
	Errors []PolicyError
}

// Group is a set of local pods selected by exactly the same policies.
type Group struct {
	// Policies are policy keys ("namespace/name", or AuditKey for audit
	// policies), sorted. Either every key is an enforce key, or every key is
	// an audit key (an audit-only group, see AuditOnly).
	Policies []string
	// Pods are the member pods ("namespace/name"), sorted.
	Pods []string
	// IPs are the member pods' addresses, sorted (IPv4 before IPv6).
	IPs []netip.Addr
}

// AuditOnly tells whether the group's pods are selected by audit policies
// only: they are not isolated, everything is accepted and logged.
func (g *Group) AuditOnly() bool {
	return len(g.Policies) > 0 && IsAuditKey(g.Policies[0])
}

// PolicyRules are the rules of one NetworkPolicy.
type PolicyRules struct {
	// Key is "namespace/name", or AuditKey(namespace, name) for an audit
	// policy.
	Key string
	// Audit is true for a policy from Input.AuditPolicies.
	Audit bool
	// IngressIsolating and EgressIsolating tell whether the policy names the
	// direction in its (defaulted) policyTypes.
	IngressIsolating bool
	EgressIsolating  bool
	// Ingress and Egress are the rules in spec order. An isolating direction
	// with no rules allows nothing.
	Ingress []Rule
	Egress  []Rule
}

// Rule allows traffic from (ingress) or to (egress) Peers on Ports.
type Rule struct {
	Peers Peers
	Ports Ports
}

// Peers is the remote side of a rule.
type Peers struct {
	// All means every address, inside the cluster or not.
	All bool
	// ID identifies the peer definition (the from/to list and the policy's
	// namespace). Rules with equal IDs have equal Ranges. It does not change
	// when pods come and go.
	ID string
	// Ranges are sorted, merged, non-overlapping ranges: IPv4 first.
	Ranges []IPRange
}

// Ports is the port side of a rule.
type Ports struct {
	// All means every protocol and port (including ICMP and the like).
	All bool
	// Ranges are numeric port ranges, sorted by protocol and merged.
	Ranges []PortRange
	// NamedID is set when the rule has named ports; it identifies them and
	// does not change when pods come and go.
	NamedID string
	// Named are the named ports resolved to destination triples, sorted.
	Named []NamedPort
}

// PortRange is an inclusive range of ports of one protocol.
type PortRange struct {
	Protocol corev1.Protocol
	First    uint16
	Last     uint16
}

// NamedPort is a named port resolved to a destination (IP, protocol, port).
type NamedPort struct {
	IP       netip.Addr
	Protocol corev1.Protocol
	Port     uint16
}

// PolicyError reports a malformed part of a policy.
type PolicyError struct {
	Policy string
	Err    error
}

func (e PolicyError) Error() string { return fmt.Sprintf("networkpolicy %s: %v", e.Policy, e.Err) }

func (e PolicyError) Unwrap() error { return e.Err }

// ProtocolNumber returns the IANA protocol number of a NetworkPolicy protocol.
func ProtocolNumber(p corev1.Protocol) (uint8, bool) {
	switch p {
	case corev1.ProtocolTCP:
		return 6, true
	case corev1.ProtocolUDP:
		return 17, true
	case corev1.ProtocolSCTP:
		return 132, true
	}
	return 0, false
}
