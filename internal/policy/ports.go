package policy

import (
	"cmp"
	"fmt"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// This file resolves the ports of a rule: numeric ranges, merged, and named
// ports, resolved against the pods that declare them.

type namedSpec struct {
	name  string
	proto corev1.Protocol
}

func resolvePorts(path func() string, list []networkingv1.NetworkPolicyPort) (Ports, []namedSpec, []error) {
	if len(list) == 0 {
		return Ports{All: true}, nil, nil
	}
	var out Ports
	var named []namedSpec
	var errs []error
	for i, p := range list {
		ppath := func() string { return fmt.Sprintf("%s[%d]", path(), i) }
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if _, ok := ProtocolNumber(proto); !ok {
			errs = append(errs, fmt.Errorf("%s.protocol: unsupported %q (matching nothing)", ppath(), proto))
			continue
		}
		switch {
		case p.Port == nil:
			out.Ranges = append(out.Ranges, PortRange{Protocol: proto, First: 0, Last: 65535})
		case p.Port.Type == intstr.String:
			if p.EndPort != nil {
				errs = append(errs, fmt.Errorf("%s.endPort: not allowed with a named port (matching nothing)", ppath()))
				continue
			}
			named = append(named, namedSpec{name: p.Port.StrVal, proto: proto})
		default:
			first, last := p.Port.IntVal, p.Port.IntVal
			if p.EndPort != nil {
				last = *p.EndPort
			}
			if first < 1 || first > 65535 || last < first || last > 65535 {
				errs = append(errs, fmt.Errorf("%s: invalid port range %d-%d (matching nothing)", ppath(), first, last))
				continue
			}
			out.Ranges = append(out.Ranges, PortRange{Protocol: proto, First: uint16(first), Last: uint16(last)})
		}
	}
	out.Ranges = mergePortRanges(out.Ranges)
	return out, named, errs
}

func mergePortRanges(in []PortRange) []PortRange {
	if len(in) == 0 {
		return nil
	}
	slices.SortFunc(in, func(a, b PortRange) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.First, b.First), cmp.Compare(a.Last, b.Last))
	})
	out := in[:1]
	for _, r := range in[1:] {
		last := &out[len(out)-1]
		if r.Protocol == last.Protocol && int(r.First) <= int(last.Last)+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// resolveNamed resolves named ports against the container ports of the pods
// behind addrs.
func resolveNamed(named []namedSpec, addrs []addrPod) []NamedPort {
	set := map[NamedPort]bool{}
	for _, a := range addrs {
		for _, cp := range a.pod.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if cp.Name == "" || cp.Port < 1 || cp.Port > 65535 {
				continue
			}
			for _, n := range named {
				if n.name == cp.Name && n.proto == proto {
					set[NamedPort{IP: a.ip, Protocol: proto, Port: uint16(cp.Port)}] = true
				}
			}
		}
	}
	out := make([]NamedPort, 0, len(set))
	for np := range set {
		out = append(out, np)
	}
	slices.SortFunc(out, compareNamed)
	return out
}

func compareNamed(a, b NamedPort) int {
	return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}
