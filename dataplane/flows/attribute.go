package flows

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/flowlog"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Index attributes kernel events: addresses to pods and workloads, policy
// keys to intents. It is immutable once built; the agent builds a new one
// after each sync and swaps it in, so the event path never waits on a lock
// held by the sync.
type Index struct {
	node    string
	byIP    map[netip.Addr]*Endpoint
	intents map[string]string
}

// NewIndex indexes the pods of every node by address and takes the map from
// policy key ("namespace/name", or policy.AuditKey for audit policies) to
// intent ("namespace/name"). Host-network pods are not indexed: their
// address is their node's, shared by every such pod and by the node. Where
// a finished pod and a live one share an address (the address was reused),
// the live one wins.
func NewIndex(node string, pods []*corev1.Pod, intents map[string]string) *Index {
	ix := &Index{node: node, byIP: make(map[netip.Addr]*Endpoint, len(pods)), intents: intents}
	finished := map[netip.Addr]bool{}
	for _, p := range pods {
		if p == nil || p.Spec.HostNetwork {
			continue
		}
		done := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		kind, name := Workload(p.Name, p.Labels, p.OwnerReferences)
		ep := &Endpoint{
			Namespace: p.Namespace, Pod: p.Name, Node: p.Spec.NodeName,
			WorkloadKind: kind, WorkloadName: name, Labels: IdentityLabels(p.Labels),
		}
		for _, ip := range policy.PodFromAPI(p).IPs {
			if _, ok := ix.byIP[ip]; ok && (done || !finished[ip]) {
				continue
			}
			e := *ep
			e.IP = ip
			ix.byIP[ip] = &e
			finished[ip] = done
		}
	}
	return ix
}

// Pod returns the endpoint of the pod with that address, or an endpoint
// with only the address when no pod has it.
func (ix *Index) Pod(ip netip.Addr) Endpoint {
	ip = ip.Unmap()
	if ix != nil {
		if ep, ok := ix.byIP[ip]; ok {
			return *ep
		}
	}
	return Endpoint{IP: ip}
}

// Attribute turns a kernel event into a flow: both addresses resolved to
// pods, the policy keys to NetworkPolicy names (audit policies under the
// name the controller would give them) and to their intents.
func (ix *Index) Attribute(ev flowlog.Event) Flow {
	f := Flow{
		Time: ev.Time, Direction: flowDirections[ev.Direction], Verdict: flowVerdicts[ev.Verdict], Protocol: ev.Protocol,
		Source: ix.Pod(ev.Src), Destination: ix.Pod(ev.Dst),
		SourcePort: ev.SrcPort, DestinationPort: ev.DstPort,
	}
	if ix != nil {
		f.Node = ix.node
	}
	for _, key := range ev.Policies {
		name, _ := policy.SplitAuditKey(key)
		f.Policies = append(f.Policies, name)
		if ix == nil {
			continue
		}
		if intent, ok := ix.intents[key]; ok {
			f.Intents = append(f.Intents, intent)
		}
	}
	f.Policies = sortedUnique(f.Policies)
	f.Intents = sortedUnique(f.Intents)
	return f
}

// flowVerdicts and flowDirections name the kernel's decisions as the
// NodeFlowReport API does.
var (
	flowVerdicts = map[policy.LogVerdict]v1alpha1.FlowVerdict{
		policy.LogAllowed: v1alpha1.VerdictAllowed,
		policy.LogDropped: v1alpha1.VerdictDropped,
		policy.LogAudited: v1alpha1.VerdictAudited,
	}
	flowDirections = map[policy.Direction]v1alpha1.FlowDirection{
		policy.Ingress: v1alpha1.FlowIngress,
		policy.Egress:  v1alpha1.FlowEgress,
	}
)

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(s)))
}
