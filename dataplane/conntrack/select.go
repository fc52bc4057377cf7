package conntrack

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-dev/palisade/internal/policy"
)

// Flow is the part of a conntrack entry that policy judges: the first packet
// of the connection as the forward and input hooks saw it.
type Flow struct {
	Src, Dst netip.Addr
	Protocol corev1.Protocol
	// Port is the destination port.
	Port uint16
}

// Tuple is one direction of a conntrack entry as the kernel reports it.
type Tuple struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// Proto is the IP protocol number.
	Proto uint8
}

// FlowOf returns the flow a conntrack entry stands for, and false for
// protocols policy does not judge by port (ICMP and the like: the rulesets
// let them through only with rules that allow every port, so a policy
// change never denies them; NetworkPolicy ports name TCP, UDP and SCTP).
//
// The filter hooks see a packet after destination NAT (prerouting) and
// before source NAT (postrouting), so when the entry was destination-NATed
// (a Service's cluster IP) the destination policy judged is the reply's
// source, not the original destination.
func FlowOf(orig, reply Tuple, dstNATed bool) (Flow, bool) {
	var proto corev1.Protocol
	switch orig.Proto {
	case 6:
		proto = corev1.ProtocolTCP
	case 17:
		proto = corev1.ProtocolUDP
	case 132:
		proto = corev1.ProtocolSCTP
	default:
		return Flow{}, false
	}
	f := Flow{Src: orig.Src.Unmap(), Dst: orig.Dst.Unmap(), Protocol: proto, Port: orig.DstPort}
	if dstNATed {
		f.Dst, f.Port = reply.Src.Unmap(), reply.SrcPort
	}
	return f, f.Src.IsValid() && f.Dst.IsValid()
}

// Judge decides flows against one state. It indexes the state's policed
// addresses once, so that the many flows that involve no policed local pod
// (most of a node's table) cost a map lookup each.
type Judge struct {
	st      *policy.State
	policed map[netip.Addr]bool
}

// NewJudge indexes st. st must not change while the Judge is in use.
func NewJudge(st *policy.State) *Judge {
	j := &Judge{st: st, policed: map[netip.Addr]bool{}}
	for _, groups := range [][]policy.Group{st.Ingress, st.Egress} {
		for _, g := range groups {
			for _, ip := range g.IPs {
				j.policed[ip] = true
			}
		}
	}
	return j
}

// Denied tells whether st denies a new connection like f: f's source or
// destination is a local pod that some policy isolates, and State.Allows says
// no. A flow between unpoliced addresses is never denied.
func (j *Judge) Denied(f Flow) bool {
	if !j.policed[f.Src] && !j.policed[f.Dst] {
		return false
	}
	return !j.st.Allows(policy.Packet{Src: f.Src, Dst: f.Dst, Protocol: f.Protocol, Port: f.Port})
}
