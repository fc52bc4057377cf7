package iptables_test

import (
	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/internal/policy"
)

// trace runs the first packet of a new connection through the chain start
// (ChainForward or ChainInput) the way the kernel would, beginning with the
// given packet mark, and tells whether it leaves our chains (RETURN or the
// end of start) rather than being dropped.
func trace(rs *iptables.Ruleset, start string, p policy.Packet, mark uint32) bool {
	pass, _ := traceLogs(rs, start, p, mark)
	return pass
}

// traceLogs is trace that also returns the NFLOG prefixes the packet met,
// in order (the tracer assumes every log rule is under its rate limit).
func traceLogs(rs *iptables.Ruleset, start string, p policy.Packet, mark uint32) (bool, []string) {
	return traceSegment(rs, start, p, mark, false)
}

// traceSegment is traceLogs for a packet that conntrack calls new; when
// midStream is set, a TCP one is not a pure SYN (a connection picked up in
// the middle, see render.SegmentMidStream).
func traceSegment(rs *iptables.Ruleset, start string, p policy.Packet, mark uint32, midStream bool) (bool, []string) {
	t := tracer{rs: rs, p: p, mark: mark, proto: 1}
	if n, ok := policy.ProtocolNumber(p.Protocol); ok {
		t.proto = n
	} else if p.Src.Is6() {
		t.proto = 58
	}
	t.midStream = midStream && t.proto == 6
	return !t.run(start, 0), t.logs
}

type tracer struct {
	rs        *iptables.Ruleset
	p         policy.Packet
	proto     uint8
	midStream bool
	mark      uint32
	logs      []string
}

// run returns true when the packet was dropped.
func (t *tracer) run(name string, depth int) bool {
	if depth > 32 {
		panic("jump loop at " + name)
	}
	c := t.rs.Chain(name)
	if c == nil {
		panic("jump to missing chain " + name)
	}
	for _, r := range c.Rules {
		if !t.matches(r) {
			continue
		}
		switch r.Target {
		case iptables.Return:
			return false
		case iptables.Drop:
			return true
		case iptables.Jump:
			if t.run(r.Chain, depth+1) {
				return true
			}
		case iptables.SetMark:
			t.mark |= t.rs.MarkBit
		case iptables.ClearMark:
			t.mark &^= t.rs.MarkBit
		case iptables.Goto:
			// The goto'd chain's end returns to our caller.
			return t.run(r.Chain, depth+1)
		case iptables.Log:
			t.logs = append(t.logs, r.Log.Prefix)
		default:
			panic("rule without a target in " + name)
		}
	}
	return false
}

func (t *tracer) matches(r iptables.Rule) bool {
	if r.CtState != "" && r.CtState != "NEW" { // packets conntrack calls new only
		return false
	}
	if r.TCPNotSYN && !t.midStream {
		return false
	}
	if r.Src.First.IsValid() && !r.Src.Contains(t.p.Src) {
		return false
	}
	if r.Dst.First.IsValid() && !r.Dst.Contains(t.p.Dst) {
		return false
	}
	if r.Proto != 0 && r.Proto != t.proto {
		return false
	}
	if len(r.DPorts) > 0 {
		in := false
		for _, s := range r.DPorts {
			in = in || (s.First <= t.p.Port && t.p.Port <= s.Last)
		}
		if !in {
			return false
		}
	}
	// Traced ICMPv6 packets are echo requests (type 128), never neighbour
	// discovery.
	if r.ICMPv6Type != 0 && r.ICMPv6Type != 128 {
		return false
	}
	switch r.Mark {
	case iptables.MarkSet:
		return t.mark&t.rs.MarkBit != 0
	case iptables.MarkUnset:
		return t.mark&t.rs.MarkBit == 0
	}
	return true
}
