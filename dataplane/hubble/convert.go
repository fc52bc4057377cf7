package hubble

import (
	"net/netip"
	"slices"
	"sort"
	"strings"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/flows"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Cilium's monitor message types (pkg/monitor/api), carried in
// flow.CiliumEventType.Type. Hubble clients pick the wording of a flow from
// them ("Policy denied DROPPED", "policy-verdict:L3-L4 INGRESS ALLOWED").
const (
	eventTypeDrop          = 1
	eventTypePolicyVerdict = 5
)

// Cilium's policy match types (flow.Flow.PolicyMatchType). Palisade decides
// on peer and port, so an allowed flow matched at L3 and L4; an audited one
// matched nothing, as Cilium reports for audit-mode denials.
const (
	policyMatchNone = 0
	policyMatchL3L4 = 2
)

// Policy kinds in flow.Policy.Kind, printed by `hubble observe
// --print-policy-names` as "name (Kind)".
const (
	// PolicyKindNetworkPolicy is a NetworkPolicy object in the API server,
	// written by the controller for an Enforce-mode intent.
	PolicyKindNetworkPolicy = "NetworkPolicy"
	// PolicyKindAudit is a NetworkPolicy the agent compiled from an Audit-mode
	// intent and programmed as log-and-accept. No object of that name exists
	// in the API server (the controller writes none in Audit mode); the name
	// is the one the controller would give it in Enforce mode, so it is a
	// kind of its own rather than "NetworkPolicy", which would send an SRE
	// looking for an object that is not there.
	PolicyKindAudit = "AuditNetworkPolicy"
)

// labelSourceK8s is the label source Cilium gives pod labels.
const labelSourceK8s = "k8s:"

// namespaceLabel is the label Cilium adds to every pod's identity; adding it
// lets `hubble observe --label io.kubernetes.pod.namespace=x` work.
const namespaceLabel = "io.kubernetes.pod.namespace"

// ToProto converts an attributed flow to Cilium's flow.Flow. It is pure and
// never returns nil.
func ToProto(f *flows.Flow) *flowpb.Flow {
	out := &flowpb.Flow{
		Time:             timestamppb.New(f.Time),
		NodeName:         f.Node,
		Type:             flowpb.FlowType_L3_L4,
		TrafficDirection: trafficDirection(f.Direction),
		IP:               ipOf(f.Source.IP, f.Destination.IP),
		L4:               layer4(f.Protocol, f.SourcePort, f.DestinationPort),
		Source:           endpoint(f.Source),
		Destination:      endpoint(f.Destination),
		// Palisade reports the first packet of a connection (allowed) or a
		// packet the policy dropped; conntrack accepts replies of established
		// connections before any policy, so neither is a reply.
		IsReply: wrapperspb.Bool(false),
		// Summary is deprecated in the proto, yet the CLI still ends its
		// compact lines with it, as for Cilium's own flows.
		Summary: summary(f.Protocol), //nolint:staticcheck // see above

	}
	policies := policyList(f.Policies)
	switch f.Verdict {
	case v1alpha1.VerdictAllowed:
		out.Verdict = flowpb.Verdict_FORWARDED
		out.EventType = &flowpb.CiliumEventType{Type: eventTypePolicyVerdict}
		out.PolicyMatchType = policyMatchL3L4
		if f.Direction == v1alpha1.FlowEgress {
			out.EgressAllowedBy = policies
		} else {
			out.IngressAllowedBy = policies
		}
	case v1alpha1.VerdictDropped:
		out.Verdict = flowpb.Verdict_DROPPED
		out.DropReasonDesc = flowpb.DropReason_POLICY_DENIED
		out.EventType = &flowpb.CiliumEventType{Type: eventTypeDrop, SubType: int32(flowpb.DropReason_POLICY_DENIED)}
		setDeniedBy(out, f.Direction, policies)
	case v1alpha1.VerdictAudited:
		out.Verdict = flowpb.Verdict_AUDIT
		out.EventType = &flowpb.CiliumEventType{Type: eventTypePolicyVerdict}
		out.PolicyMatchType = policyMatchNone
		// Hubble prints "AUDITED BY" from the denied-by lists: these are the
		// policies that would have dropped the flow in Enforce mode.
		setDeniedBy(out, f.Direction, policies)
	default:
		out.Verdict = flowpb.Verdict_VERDICT_UNKNOWN
	}
	return out
}

func setDeniedBy(out *flowpb.Flow, dir v1alpha1.FlowDirection, policies []*flowpb.Policy) {
	if dir == v1alpha1.FlowEgress {
		out.EgressDeniedBy = policies
	} else {
		out.IngressDeniedBy = policies
	}
}

func trafficDirection(d v1alpha1.FlowDirection) flowpb.TrafficDirection {
	switch d {
	case v1alpha1.FlowIngress:
		return flowpb.TrafficDirection_INGRESS
	case v1alpha1.FlowEgress:
		return flowpb.TrafficDirection_EGRESS
	default:
		return flowpb.TrafficDirection_TRAFFIC_DIRECTION_UNKNOWN
	}
}

func ipOf(src, dst netip.Addr) *flowpb.IP {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() && !dst.IsValid() {
		return nil
	}
	ip := &flowpb.IP{}
	if src.IsValid() {
		ip.Source = src.String()
	}
	if dst.IsValid() {
		ip.Destination = dst.String()
	}
	probe := src
	if !probe.IsValid() {
		probe = dst
	}
	if probe.Is4() {
		ip.IpVersion = flowpb.IPVersion_IPv4
	} else {
		ip.IpVersion = flowpb.IPVersion_IPv6
	}
	return ip
}

// IANA protocol numbers.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

func layer4(proto uint8, sport, dport uint16) *flowpb.Layer4 {
	s, d := uint32(sport), uint32(dport)
	switch proto {
	case protoTCP:
		// An allowed flow is the first packet of a new connection; a dropped
		// TCP packet from a peer without a connection is its SYN too.
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{
			SourcePort: s, DestinationPort: d, Flags: &flowpb.TCPFlags{SYN: true},
		}}}
	case protoUDP:
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: s, DestinationPort: d}}}
	case protoSCTP:
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_SCTP{SCTP: &flowpb.SCTP{SourcePort: s, DestinationPort: d}}}
	case protoICMP:
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_ICMPv4{ICMPv4: &flowpb.ICMPv4{}}}
	case protoICMPv6:
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_ICMPv6{ICMPv6: &flowpb.ICMPv6{}}}
	default:
		return nil
	}
}

// summary is the short text Hubble prints at the end of a compact line.
func summary(proto uint8) string {
	switch proto {
	case protoTCP:
		return "TCP Flags: SYN"
	case protoUDP:
		return "UDP"
	case protoSCTP:
		return "SCTP"
	case protoICMP:
		return "ICMPv4"
	case protoICMPv6:
		return "ICMPv6"
	default:
		return ""
	}
}

// endpoint converts one side of a flow. Peers that are not pods get an empty
// endpoint: Palisade knows only their address (in flow.IP), and inventing a
// Cilium reserved identity (world, host) for them could be wrong.
func endpoint(e flows.Endpoint) *flowpb.Endpoint {
	if !e.IsPod() {
		return &flowpb.Endpoint{}
	}
	out := &flowpb.Endpoint{
		Namespace: e.Namespace,
		PodName:   e.Pod,
		Labels:    podLabels(e.Namespace, e.Labels),
	}
	if e.WorkloadName != "" {
		out.Workloads = []*flowpb.Workload{{Name: e.WorkloadName, Kind: e.WorkloadKind}}
	}
	return out
}

// podLabels renders labels the way Cilium does: "k8s:key=value", sorted,
// with the namespace label Cilium adds to every pod.
func podLabels(namespace string, labels map[string]string) []string {
	out := make([]string, 0, len(labels)+1)
	for k, v := range labels {
		out = append(out, labelSourceK8s+k+"="+v)
	}
	if _, ok := labels[namespaceLabel]; !ok && namespace != "" {
		out = append(out, labelSourceK8s+namespaceLabel+"="+namespace)
	}
	sort.Strings(out)
	return out
}

// policyList converts policy keys ("namespace/name" or
// "audit:namespace/name") to flow.Policy, in their given order.
func policyList(keys []string) []*flowpb.Policy {
	if len(keys) == 0 {
		return nil
	}
	out := make([]*flowpb.Policy, 0, len(keys))
	for _, key := range keys {
		kind := PolicyKindNetworkPolicy
		key, audit := policy.SplitAuditKey(key)
		if audit {
			kind = PolicyKindAudit
		}
		ns, name, ok := strings.Cut(key, "/")
		if !ok {
			ns, name = "", key
		}
		out = append(out, &flowpb.Policy{Name: name, Namespace: ns, Kind: kind})
	}
	return slices.Clip(out)
}
