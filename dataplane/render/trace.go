package render

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/palisade-dev/palisade/internal/policy"
)

// Trace runs the first packet of a new connection (conntrack state new; a
// pure SYN for TCP) through the base chains of a hook the way netfilter
// would, and tells whether it passes. Tests use it to compare the ruleset with the model and
// with the oracle without a kernel.
func (rs *Ruleset) Trace(hook Hook, p policy.Packet) bool {
	pass, _ := rs.TraceLogs(hook, p)
	return pass
}

// TraceLogs is Trace that also returns the prefixes of the log statements
// the packet met, in order. Log statements never change the verdict, and
// the tracer assumes every one of them is under its rate limit.
func (rs *Ruleset) TraceLogs(hook Hook, p policy.Packet) (pass bool, logs []string) {
	return rs.TraceSegment(hook, p, SegmentSYN)
}

// Segment is what the packet that starts a conntrack entry looks like, for
// TCP (other protocols ignore it).
type Segment uint8

const (
	// SegmentSYN is a pure SYN: a client opening a connection.
	SegmentSYN Segment = iota
	// SegmentMidStream is any other TCP packet (ACK, data) that conntrack,
	// with nf_conntrack_tcp_loose=1, takes as the start of a new entry: a
	// connection picked up in the middle, such as a retransmission after
	// its entry was deleted (see MidStreamRules).
	SegmentMidStream
)

// TraceSegment is TraceLogs for a packet that starts a conntrack entry as
// seg says.
func (rs *Ruleset) TraceSegment(hook Hook, p policy.Packet, seg Segment) (pass bool, logs []string) {
	var bases []*Chain
	for i := range rs.Chains {
		if rs.Chains[i].Hook == hook {
			bases = append(bases, &rs.Chains[i])
		}
	}
	slices.SortStableFunc(bases, func(a, b *Chain) int { return cmp.Compare(a.Priority, b.Priority) })
	proto := uint8(1) // anything that is not TCP, UDP or SCTP behaves like ICMP here
	if n, ok := policy.ProtocolNumber(p.Protocol); ok {
		proto = n
	}
	t := tracer{rs: rs, p: p, proto: proto, midStream: proto == protoTCP && seg == SegmentMidStream}
	for _, c := range bases {
		// accept and fall-through (policy accept) both continue to the next
		// base chain; only drop is final.
		if t.run(c, 0) == Drop {
			return false, t.logs
		}
	}
	return true, t.logs
}

type tracer struct {
	rs    *Ruleset
	p     policy.Packet
	proto uint8
	// midStream: a TCP packet other than a pure SYN.
	midStream bool
	logs      []string
}

const protoTCP = 6

// run evaluates a chain; it returns Accept, Drop or VerdictNone (end of a
// regular chain: return to the caller).
func (t *tracer) run(c *Chain, depth int) Verdict {
	if depth > 16 {
		panic("render: jump loop")
	}
	for _, r := range c.Rules {
		if !t.matches(r) {
			continue
		}
		if r.Log.Prefix != "" {
			t.logs = append(t.logs, r.Log.Prefix)
		}
		var target string
		switch {
		case r.Verdict == VerdictNone && r.SaddrMap == "" && r.DaddrMap == "":
			continue
		case r.SaddrMap != "":
			target = t.lookupMap(r.SaddrMap, t.p.Src)
		case r.DaddrMap != "":
			target = t.lookupMap(r.DaddrMap, t.p.Dst)
		case r.Verdict == Jump:
			target = r.Target
		default:
			return r.Verdict
		}
		if target == "" {
			continue
		}
		next := t.rs.Chain(target)
		if next == nil {
			panic("render: jump to missing chain " + target)
		}
		if v := t.run(next, depth+1); v != VerdictNone {
			return v
		}
	}
	return VerdictNone
}

func (t *tracer) matches(r Rule) bool {
	switch r.Family {
	case Family4:
		if !t.p.Src.Is4() {
			return false
		}
	case Family6:
		if !t.p.Src.Is6() {
			return false
		}
	}
	// The tracer models packets conntrack calls new, never neighbour
	// discovery.
	if (r.CtState != CtNone && r.CtState != CtNew) || r.ICMPv6Type != 0 {
		return false
	}
	if r.TCPNotSYN && !t.midStream {
		return false
	}
	if r.SaddrSet != "" && !t.inAddrSet(r.SaddrSet, t.p.Src) {
		return false
	}
	if r.DaddrSet != "" && !t.inAddrSet(r.DaddrSet, t.p.Dst) {
		return false
	}
	if r.ProtoPortSet != "" && !t.inPortSet(r.ProtoPortSet) {
		return false
	}
	if r.DaddrProtoPortSet != "" && !t.inNamedSet(r.DaddrProtoPortSet) {
		return false
	}
	return true
}

func (t *tracer) set(name string) *Set {
	s := t.rs.Set(name)
	if s == nil {
		panic("render: rule refers to missing set " + name)
	}
	return s
}

func (t *tracer) inAddrSet(name string, a netip.Addr) bool {
	for _, e := range t.set(name).Elements {
		if a.BitLen() == e.Addr.BitLen() && e.Addr.Compare(a) <= 0 && a.Compare(e.AddrLast) <= 0 {
			return true
		}
	}
	return false
}

func (t *tracer) inPortSet(name string) bool {
	for _, e := range t.set(name).Elements {
		if e.Proto == t.proto && e.Port <= t.p.Port && t.p.Port <= e.PortLast {
			return true
		}
	}
	return false
}

func (t *tracer) inNamedSet(name string) bool {
	for _, e := range t.set(name).Elements {
		if e.Addr == t.p.Dst && e.Proto == t.proto && e.Port == t.p.Port {
			return true
		}
	}
	return false
}

func (t *tracer) lookupMap(name string, a netip.Addr) string {
	for _, e := range t.set(name).Elements {
		if e.Addr == a {
			return e.Jump
		}
	}
	return ""
}
