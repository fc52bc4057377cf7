package iptables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Family is an IP family: one iptables binary, one restore per sync.
type Family uint8

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// ChainPrefix starts the name of every chain this backend owns.
const ChainPrefix = "PALISADE-"

// The fixed chains, in the order a Ruleset lists them.
const (
	ChainForward = ChainPrefix + "FORWARD"
	ChainInput   = ChainPrefix + "INPUT"
	// ChainOutput holds only the destination half of the mid-stream drop
	// (render.OutputMidStreamRules says why): the node's new connections
	// to pods are never judged.
	ChainOutput  = ChainPrefix + "OUTPUT"
	ChainEgress  = ChainPrefix + "EGRESS"
	ChainIngress = ChainPrefix + "INGRESS"
	// ChainMidStream drops TCP packets that would start a conntrack entry
	// without being a SYN, to or from a policed pod (render.MidStreamRules
	// says why): it jumps to two dispatch chains of the policed pods'
	// addresses, by source and by destination, whose leaves drop.
	ChainMidStream    = ChainPrefix + "MIDSTREAM"
	ChainMidStreamSrc = ChainPrefix + "MS-SRC"
	ChainMidStreamDst = ChainPrefix + "MS-DST"
)

// Hook is a built-in chain we hook and the chain its rule 1 jumps to.
type Hook struct{ Builtin, Chain string }

// Hooks returns the built-in chains we hook, in the order they are hooked.
func Hooks() []Hook {
	return []Hook{
		{"FORWARD", ChainForward},
		{"INPUT", ChainInput},
		{"OUTPUT", ChainOutput},
	}
}

// DefaultMarkBit is the packet-mark bit that tells "allowed" inside our
// chains (see the package documentation).
const DefaultMarkBit uint32 = 0x00800000

// Ruleset is the desired content of our chains in one family's filter table.
type Ruleset struct {
	Family Family
	// MarkBit is the bit allowing rules set.
	MarkBit uint32
	// Chains lists the fixed chains first, then the others sorted by name.
	Chains []Chain
}

// Chain is a user chain and its rules.
type Chain struct {
	Name  string
	Rules []Rule
}

// Target is what a rule does when it matches.
type Target uint8

const (
	Return Target = iota + 1
	Drop
	// Jump jumps to Rule.Chain.
	Jump
	// SetMark sets the mark bit (allowed); ClearMark clears it.
	SetMark
	ClearMark
	// Goto goes to Rule.Chain: when that chain ends, traversal returns to
	// the caller of the current chain.
	Goto
	// Log sends the packet to NFLOG (Rule.Log) and goes on with the next
	// rule: NFLOG is not a terminating target.
	Log
)

// MarkMatch matches the mark bit.
type MarkMatch uint8

const (
	MarkAny MarkMatch = iota
	MarkSet
	MarkUnset
)

// PortSpan is an inclusive destination-port range.
type PortSpan struct{ First, Last uint16 }

// Rule is one rule. Every set field must match; the zero value matches
// every packet.
type Rule struct {
	// CtState is a conntrack state list such as "RELATED,ESTABLISHED".
	CtState string
	// Src and Dst are address ranges; the zero range matches any address.
	Src, Dst policy.IPRange
	// Proto is an IP protocol number (0: any).
	Proto uint8
	// DPorts are destination ports of Proto (empty: any).
	DPorts []PortSpan
	// ICMPv6Type matches an ICMPv6 type when Proto is 58.
	ICMPv6Type uint8
	// TCPNotSYN (`! --syn`, Proto TCP) matches a TCP packet other than a
	// pure SYN: its flags FIN,SYN,RST,ACK are not SYN alone.
	TCPNotSYN bool
	Mark      MarkMatch
	Comment   string
	Target    Target
	// Chain is the target chain of a Jump or Goto.
	Chain string
	// Log is the NFLOG statement of a Log target, rate-limited with -m limit
	// when its Rate is set.
	Log render.Log
}

// Protocol numbers used by the rules.
const (
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// maxMultiport is how many ports (a range counts two) one multiport match
// holds (XT_MULTI_PORTS in the kernel).
const maxMultiport = 15

// Count returns the number of rules in the ruleset.
func (rs *Ruleset) Count() int {
	n := 0
	for _, c := range rs.Chains {
		n += len(c.Rules)
	}
	return n
}

// Chain returns the chain with the given name, or nil.
func (rs *Ruleset) Chain(name string) *Chain {
	for i := range rs.Chains {
		if rs.Chains[i].Name == name {
			return &rs.Chains[i]
		}
	}
	return nil
}

// Args returns the rule as iptables arguments after `-A CHAIN`.
func (r Rule) Args(markBit uint32) []string {
	var a []string
	if r.CtState != "" {
		a = append(a, "-m", "conntrack", "--ctstate", r.CtState)
	}
	var ranges []string
	if r.Src.First.IsValid() {
		if p, ok := prefixOf(r.Src); ok {
			a = append(a, "-s", p.String())
		} else {
			ranges = append(ranges, "--src-range", r.Src.First.String()+"-"+r.Src.Last.String())
		}
	}
	if r.Dst.First.IsValid() {
		if p, ok := prefixOf(r.Dst); ok {
			a = append(a, "-d", p.String())
		} else {
			ranges = append(ranges, "--dst-range", r.Dst.First.String()+"-"+r.Dst.Last.String())
		}
	}
	if len(ranges) > 0 {
		a = append(append(a, "-m", "iprange"), ranges...)
	}
	if r.Proto != 0 {
		a = append(a, "-p", protoName(r.Proto))
	}
	if r.Proto == protoTCP && r.TCPNotSYN {
		a = append(a, "!", "--syn")
	}
	switch {
	case len(r.DPorts) == 1:
		a = append(a, "--dport", r.DPorts[0].text())
	case len(r.DPorts) > 1:
		spans := make([]string, len(r.DPorts))
		for i, s := range r.DPorts {
			spans[i] = s.text()
		}
		a = append(a, "-m", "multiport", "--dports", strings.Join(spans, ","))
	}
	if r.Proto == protoICMPv6 && r.ICMPv6Type != 0 {
		a = append(a, "-m", "icmp6", "--icmpv6-type", strconv.Itoa(int(r.ICMPv6Type)))
	}
	switch r.Mark {
	case MarkSet:
		a = append(a, "-m", "mark", "--mark", fmt.Sprintf("%#x/%#x", markBit, markBit))
	case MarkUnset:
		a = append(a, "-m", "mark", "--mark", fmt.Sprintf("0x0/%#x", markBit))
	}
	if r.Comment != "" {
		a = append(a, "-m", "comment", "--comment", strconv.Quote(r.Comment))
	}
	if r.Target == Log && r.Log.Rate > 0 {
		a = append(a, "-m", "limit", "--limit", fmt.Sprintf("%d/sec", r.Log.Rate), "--limit-burst", strconv.Itoa(int(r.Log.Burst)))
	}
	switch r.Target {
	case Return:
		a = append(a, "-j", "RETURN")
	case Drop:
		a = append(a, "-j", "DROP")
	case Jump:
		a = append(a, "-j", r.Chain)
	case SetMark:
		a = append(a, "-j", "MARK", "--set-xmark", fmt.Sprintf("%#x/%#x", markBit, markBit))
	case ClearMark:
		a = append(a, "-j", "MARK", "--set-xmark", fmt.Sprintf("0x0/%#x", markBit))
	case Goto:
		a = append(a, "-g", r.Chain)
	case Log:
		a = append(a, "-j", "NFLOG", "--nflog-group", strconv.Itoa(int(r.Log.Group)), "--nflog-prefix", strconv.Quote(r.Log.Prefix))
	}
	return a
}

func (s PortSpan) text() string {
	if s.First == s.Last {
		return strconv.Itoa(int(s.First))
	}
	return fmt.Sprintf("%d:%d", s.First, s.Last)
}

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoSCTP:
		return "sctp"
	case protoICMPv6:
		return "ipv6-icmp"
	}
	return strconv.Itoa(int(p))
}

// prefixOf returns the prefix that covers exactly r, if there is one.
func prefixOf(r policy.IPRange) (netip.Prefix, bool) {
	ps := r.Prefixes()
	if len(ps) != 1 {
		return netip.Prefix{}, false
	}
	return ps[0], true
}
