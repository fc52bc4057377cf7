package hubble

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// predicate tells whether a flow has one property a filter asks for.
type predicate func(*flowpb.Flow) bool

// flowFilter is one compiled flow.FlowFilter: all its predicates must hold.
type flowFilter []predicate

func (ff flowFilter) match(f *flowpb.Flow) bool {
	for _, p := range ff {
		if !p(f) {
			return false
		}
	}
	return true
}

// filterList is a compiled whitelist or blacklist: one of its filters must
// match.
type filterList []flowFilter

func (l filterList) any(f *flowpb.Flow) bool {
	for _, ff := range l {
		if ff.match(f) {
			return true
		}
	}
	return false
}

// compileFilters compiles the filters of a request. An error means the
// request is malformed (codes.InvalidArgument).
func compileFilters(in []*flowpb.FlowFilter) (filterList, error) {
	out := make(filterList, 0, len(in))
	for i, ff := range in {
		c, err := compileFilter(ff)
		if err != nil {
			return nil, fmt.Errorf("filter %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// never matches no flow. It stands for the filter fields about data that
// Palisade's flows never carry (services, FQDNs, L7, identities other than
// zero, clusters, interfaces): Hubble with Cilium also selects no flow that
// lacks the field asked for. Ignoring such a field instead would return
// flows the client excluded.
func never(*flowpb.Flow) bool { return false }

func compileFilter(ff *flowpb.FlowFilter) (flowFilter, error) {
	var out flowFilter
	add := func(p predicate, err error) error {
		if err != nil {
			return err
		}
		if p != nil {
			out = append(out, p)
		}
		return nil
	}
	var err error
	ff.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch fd.Name() {
		case "source_pod":
			err = add(podFilter(ff.GetSourcePod(), (*flowpb.Flow).GetSource))
		case "destination_pod":
			err = add(podFilter(ff.GetDestinationPod(), (*flowpb.Flow).GetDestination))
		case "source_ip":
			err = add(ipFilter(ff.GetSourceIp(), (*flowpb.IP).GetSource))
		case "destination_ip":
			err = add(ipFilter(ff.GetDestinationIp(), (*flowpb.IP).GetDestination))
		case "source_label":
			err = add(labelFilter(ff.GetSourceLabel(), (*flowpb.Flow).GetSource))
		case "destination_label":
			err = add(labelFilter(ff.GetDestinationLabel(), (*flowpb.Flow).GetDestination))
		case "source_workload":
			err = add(workloadFilter(ff.GetSourceWorkload(), (*flowpb.Flow).GetSource), nil)
		case "destination_workload":
			err = add(workloadFilter(ff.GetDestinationWorkload(), (*flowpb.Flow).GetDestination), nil)
		case "source_identity":
			err = add(identityFilter(ff.GetSourceIdentity(), (*flowpb.Flow).GetSource), nil)
		case "destination_identity":
			err = add(identityFilter(ff.GetDestinationIdentity(), (*flowpb.Flow).GetDestination), nil)
		case "verdict":
			err = add(oneOf(ff.GetVerdict(), (*flowpb.Flow).GetVerdict), nil)
		case "drop_reason_desc":
			err = add(oneOf(ff.GetDropReasonDesc(), (*flowpb.Flow).GetDropReasonDesc), nil)
		case "traffic_direction":
			err = add(oneOf(ff.GetTrafficDirection(), (*flowpb.Flow).GetTrafficDirection), nil)
		case "ip_version":
			err = add(oneOf(ff.GetIpVersion(), func(f *flowpb.Flow) flowpb.IPVersion { return f.GetIP().GetIpVersion() }), nil)
		case "encrypted":
			err = add(oneOf(ff.GetEncrypted(), func(f *flowpb.Flow) bool { return f.GetIP().GetEncrypted() }), nil)
		case "reply":
			err = add(replyFilter(ff.GetReply()), nil)
		case "protocol":
			err = add(protocolFilter(ff.GetProtocol()))
		case "source_port":
			err = add(portFilter(ff.GetSourcePort(), true))
		case "destination_port":
			err = add(portFilter(ff.GetDestinationPort(), false))
		case "tcp_flags":
			err = add(tcpFlagsFilter(ff.GetTcpFlags()), nil)
		case "event_type":
			err = add(eventTypeFilter(ff.GetEventType()), nil)
		case "node_name":
			err = add(nodeNameFilter(ff.GetNodeName()))
		case "experimental":
			if len(ff.GetExperimental().GetCelExpression()) > 0 {
				err = fmt.Errorf("cel_expression filters are not supported")
			}
		default:
			err = add(never, nil)
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func oneOf[T comparable](want []T, get func(*flowpb.Flow) T) predicate {
	return func(f *flowpb.Flow) bool { return slices.Contains(want, get(f)) }
}

// podSelector is one "[namespace/][pod-name-prefix]" of a pod filter.
type podSelector struct {
	namespace string // "" for any
	prefix    string
}

// podFilter follows Hubble: "ns/" selects the pods of namespace ns,
// "ns/name" the pods of ns whose name starts with name, "/name" such pods in
// any namespace, and "name" without a slash such pods in namespace
// "default". An empty selector or "/" selects every flow.
func podFilter(in []string, side func(*flowpb.Flow) *flowpb.Endpoint) (predicate, error) {
	sels := make([]podSelector, 0, len(in))
	for _, s := range in {
		if s == "" || s == "/" {
			return nil, nil
		}
		ns, prefix, ok := strings.Cut(s, "/")
		if !ok {
			ns, prefix = "default", s
		}
		sels = append(sels, podSelector{namespace: ns, prefix: prefix})
	}
	return func(f *flowpb.Flow) bool {
		ep := side(f)
		if ep.GetPodName() == "" {
			return false
		}
		for _, s := range sels {
			if (s.namespace == "" || s.namespace == ep.GetNamespace()) && strings.HasPrefix(ep.GetPodName(), s.prefix) {
				return true
			}
		}
		return false
	}, nil
}

// ipFilter matches addresses ("10.0.0.1") and prefixes ("10.0.0.0/8").
func ipFilter(in []string, get func(*flowpb.IP) string) (predicate, error) {
	prefixes := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("invalid IP prefix %q: %w", s, err)
			}
			prefixes = append(prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("invalid IP address %q: %w", s, err)
		}
		prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return func(f *flowpb.Flow) bool {
		a, err := netip.ParseAddr(get(f.GetIP()))
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}, nil
}

// labelRequirement is one term of a label selector.
type labelRequirement struct {
	source string // "" or "any" for any source, else "k8s", "reserved", …
	key    string
	op     string // "exists", "!exists", "=", "!="
	value  string
}

// labelFilter matches Hubble label selectors: comma-separated terms that
// must all hold, each "key=value" (or "=="), "key!=value", "key" or "!key",
// with an optional source prefix ("k8s:app=web", "reserved:world"); a term
// without a source matches labels of any source, as in Cilium.
func labelFilter(in []string, side func(*flowpb.Flow) *flowpb.Endpoint) (predicate, error) {
	sels := make([][]labelRequirement, 0, len(in))
	for _, s := range in {
		sel, err := parseLabelSelector(s)
		if err != nil {
			return nil, err
		}
		sels = append(sels, sel)
	}
	return func(f *flowpb.Flow) bool {
		labels := side(f).GetLabels()
		for _, sel := range sels {
			if selectorMatches(sel, labels) {
				return true
			}
		}
		return false
	}, nil
}

func parseLabelSelector(s string) ([]labelRequirement, error) {
	var out []labelRequirement
	for term := range strings.SplitSeq(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			return nil, fmt.Errorf("invalid label selector %q: empty term", s)
		}
		if strings.Contains(term, "(") || strings.Contains(term, " ") {
			return nil, fmt.Errorf("invalid label selector %q: only =, ==, != and existence terms are supported", s)
		}
		var r labelRequirement
		switch {
		case strings.HasPrefix(term, "!"):
			r.op, r.key = "!exists", term[1:]
		case strings.Contains(term, "!="):
			r.key, r.value, _ = strings.Cut(term, "!=")
			r.op = "!="
		case strings.Contains(term, "=="):
			r.key, r.value, _ = strings.Cut(term, "==")
			r.op = "="
		case strings.Contains(term, "="):
			r.key, r.value, _ = strings.Cut(term, "=")
			r.op = "="
		default:
			r.op, r.key = "exists", term
		}
		if src, key, ok := strings.Cut(r.key, ":"); ok {
			r.source, r.key = src, key
		}
		if r.source == "any" {
			r.source = ""
		}
		if r.key == "" {
			return nil, fmt.Errorf("invalid label selector %q: empty key", s)
		}
		out = append(out, r)
	}
	return out, nil
}

func selectorMatches(sel []labelRequirement, labels []string) bool {
	for _, r := range sel {
		found, value := lookupLabel(labels, r.source, r.key)
		var ok bool
		switch r.op {
		case "exists":
			ok = found
		case "!exists":
			ok = !found
		case "=":
			ok = found && value == r.value
		case "!=":
			ok = !found || value != r.value
		}
		if !ok {
			return false
		}
	}
	return true
}

// lookupLabel finds key among labels rendered "source:key=value".
func lookupLabel(labels []string, source, key string) (bool, string) {
	for _, l := range labels {
		src, kv, ok := strings.Cut(l, ":")
		if !ok {
			src, kv = "", l
		}
		if source != "" && src != source {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			return true, v
		}
	}
	return false, ""
}

// workloadFilter matches a workload by name and kind; an empty name or kind
// matches any.
func workloadFilter(in []*flowpb.Workload, side func(*flowpb.Flow) *flowpb.Endpoint) predicate {
	return func(f *flowpb.Flow) bool {
		for _, have := range side(f).GetWorkloads() {
			for _, want := range in {
				if (want.GetName() == "" || want.GetName() == have.GetName()) &&
					(want.GetKind() == "" || want.GetKind() == have.GetKind()) {
					return true
				}
			}
		}
		return false
	}
}

func identityFilter(in []uint32, side func(*flowpb.Flow) *flowpb.Endpoint) predicate {
	return func(f *flowpb.Flow) bool { return slices.Contains(in, side(f).GetIdentity()) }
}

func replyFilter(in []bool) predicate {
	return func(f *flowpb.Flow) bool {
		return f.GetIsReply() != nil && slices.Contains(in, f.GetIsReply().GetValue())
	}
}

// protocolFilter accepts Hubble's protocol names. L7 protocols are valid
// but select nothing: Palisade observes L3/L4 only.
func protocolFilter(in []string) (predicate, error) {
	var want []string
	for _, p := range in {
		p = strings.ToLower(p)
		switch p {
		case "tcp", "udp", "sctp", "icmp", "icmpv4", "icmpv6", "vrrp", "igmp":
			want = append(want, p)
		case "http", "dns", "kafka":
		default:
			return nil, fmt.Errorf("unknown protocol %q", p)
		}
	}
	return func(f *flowpb.Flow) bool {
		l4 := f.GetL4()
		for _, p := range want {
			switch {
			case p == "tcp" && l4.GetTCP() != nil,
				p == "udp" && l4.GetUDP() != nil,
				p == "sctp" && l4.GetSCTP() != nil,
				p == "icmp" && (l4.GetICMPv4() != nil || l4.GetICMPv6() != nil),
				p == "icmpv4" && l4.GetICMPv4() != nil,
				p == "icmpv6" && l4.GetICMPv6() != nil,
				p == "vrrp" && l4.GetVRRP() != nil,
				p == "igmp" && l4.GetIGMP() != nil:
				return true
			}
		}
		return false
	}, nil
}

func portFilter(in []string, source bool) (predicate, error) {
	ports := make([]uint32, 0, len(in))
	for _, s := range in {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("invalid port %q: %w", s, err)
		}
		ports = append(ports, uint32(n))
	}
	return func(f *flowpb.Flow) bool {
		sport, dport, ok := l4Ports(f.GetL4())
		if !ok {
			return false
		}
		if source {
			return slices.Contains(ports, sport)
		}
		return slices.Contains(ports, dport)
	}, nil
}

func l4Ports(l4 *flowpb.Layer4) (sport, dport uint32, ok bool) {
	switch p := l4.GetProtocol().(type) {
	case *flowpb.Layer4_TCP:
		return p.TCP.GetSourcePort(), p.TCP.GetDestinationPort(), true
	case *flowpb.Layer4_UDP:
		return p.UDP.GetSourcePort(), p.UDP.GetDestinationPort(), true
	case *flowpb.Layer4_SCTP:
		return p.SCTP.GetSourcePort(), p.SCTP.GetDestinationPort(), true
	default:
		return 0, 0, false
	}
}

// tcpFlagsFilter matches a TCP flow that has every flag of one of the
// given sets.
func tcpFlagsFilter(in []*flowpb.TCPFlags) predicate {
	return func(f *flowpb.Flow) bool {
		have := f.GetL4().GetTCP().GetFlags()
		if have == nil {
			return false
		}
		for _, want := range in {
			if (!want.GetFIN() || have.GetFIN()) && (!want.GetSYN() || have.GetSYN()) &&
				(!want.GetRST() || have.GetRST()) && (!want.GetPSH() || have.GetPSH()) &&
				(!want.GetACK() || have.GetACK()) && (!want.GetURG() || have.GetURG()) &&
				(!want.GetECE() || have.GetECE()) && (!want.GetCWR() || have.GetCWR()) &&
				(!want.GetNS() || have.GetNS()) {
				return true
			}
		}
		return false
	}
}

// eventTypeFilter matches Cilium event types (`hubble observe --type drop`,
// `--type policy-verdict`), with the sub-type when asked.
func eventTypeFilter(in []*flowpb.EventTypeFilter) predicate {
	return func(f *flowpb.Flow) bool {
		et := f.GetEventType()
		if et == nil {
			return false
		}
		for _, want := range in {
			if want.GetType() == et.GetType() && (!want.GetMatchSubType() || want.GetSubType() == et.GetSubType()) {
				return true
			}
		}
		return false
	}
}

// nodeNameFilter matches node names with shell patterns ("worker-*"). Hubble
// also accepts "cluster/node"; Palisade has no cluster names, so only the
// node part is matched.
func nodeNameFilter(in []string) (predicate, error) {
	pats := make([]string, 0, len(in))
	for _, p := range in {
		if i := strings.LastIndex(p, "/"); i >= 0 {
			p = p[i+1:]
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("invalid node name pattern %q: %w", p, err)
		}
		pats = append(pats, p)
	}
	return func(f *flowpb.Flow) bool {
		for _, p := range pats {
			if ok, _ := path.Match(p, f.GetNodeName()); ok {
				return true
			}
		}
		return false
	}, nil
}
