package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/dataplane/render"
)

// This file turns the renderer's plain description into google/nftables
// objects and expressions, the same bytecode `nft` generates for the text
// form (see render.Rule.Text).

var (
	typeProtoPort      = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	typeAddr4ProtoPort = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	typeAddr6ProtoPort = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
)

func chainObject(table *nftables.Table, c *render.Chain) *nftables.Chain {
	ch := &nftables.Chain{Name: c.Name, Table: table}
	if c.IsBase() {
		var hook *nftables.ChainHook
		switch c.Hook {
		case render.HookInput:
			hook = nftables.ChainHookInput
		case render.HookOutput:
			hook = nftables.ChainHookOutput
		default:
			hook = nftables.ChainHookForward
		}
		accept := nftables.ChainPolicyAccept
		ch.Hooknum = hook
		ch.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority))
		ch.Type = nftables.ChainTypeFilter
		ch.Policy = &accept
	}
	return ch
}

func setObject(table *nftables.Table, s *render.Set) *nftables.Set {
	o := &nftables.Set{Table: table, Name: s.Name, Interval: s.Kind.Interval()}
	switch s.Kind {
	case render.SetAddr4:
		o.KeyType = nftables.TypeIPAddr
	case render.SetAddr6:
		o.KeyType = nftables.TypeIP6Addr
	case render.SetProtoPort:
		o.KeyType, o.Concatenation = typeProtoPort, true
	case render.SetAddr4ProtoPort:
		o.KeyType, o.Concatenation = typeAddr4ProtoPort, true
	case render.SetAddr6ProtoPort:
		o.KeyType, o.Concatenation = typeAddr6ProtoPort, true
	case render.MapAddr4:
		o.KeyType, o.DataType, o.IsMap = nftables.TypeIPAddr, nftables.TypeVerdict, true
	case render.MapAddr6:
		o.KeyType, o.DataType, o.IsMap = nftables.TypeIP6Addr, nftables.TypeVerdict, true
	}
	return o
}

// elements encodes set elements. Single-field interval sets (rbtree) take a
// start element and an interval-end element one past the last address;
// concatenated interval sets (pipapo) take Key and an inclusive KeyEnd.
func elements(s *render.Set, es []render.Element) []nftables.SetElement {
	var out []nftables.SetElement
	for _, e := range es {
		switch s.Kind {
		case render.SetAddr4, render.SetAddr6:
			out = append(out, nftables.SetElement{Key: e.Addr.AsSlice()})
			// A range that ends at the last address of the family has no
			// interval end: the kernel's rbtree treats it as open-ended.
			if next := e.AddrLast.Next(); next.IsValid() {
				out = append(out, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
			}
		case render.SetProtoPort:
			out = append(out, nftables.SetElement{Key: protoPort(e.Proto, e.Port), KeyEnd: protoPort(e.Proto, e.PortLast)})
		case render.SetAddr4ProtoPort, render.SetAddr6ProtoPort:
			out = append(out, nftables.SetElement{Key: append(e.Addr.AsSlice(), protoPort(e.Proto, e.Port)...)})
		case render.MapAddr4, render.MapAddr6:
			out = append(out, nftables.SetElement{Key: e.Addr.AsSlice(), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: e.Jump}})
		}
	}
	return out
}

// protoPort encodes `inet_proto . inet_service`, each field padded to a
// 32-bit register as the kernel expects in concatenations.
func protoPort(proto uint8, port uint16) []byte {
	return []byte{proto, 0, 0, 0, byte(port >> 8), byte(port), 0, 0}
}

// Registers: NFT_REG_1 is the first 16-byte register and overlaps the 32-bit
// registers 8..11; concatenated fields go into consecutive 32-bit registers.
const (
	reg1    = 1
	reg32_0 = 8
)

// ruleExprs encodes a rule: its matches, then the dispatch to a verdict
// map, or the log statement and the verdict.
func ruleExprs(r *render.Rule) ([]expr.Any, error) {
	ex := append(familyExprs(r.Family), packetExprs(r)...)
	ex = append(ex, setExprs(r)...)
	if r.SaddrMap != "" || r.DaddrMap != "" {
		if r.Verdict != render.VerdictNone {
			return nil, fmt.Errorf("rule %q: a vmap rule has no verdict of its own", r.Text())
		}
		return append(ex, vmapExprs(r)...), nil
	}
	if r.Log.Prefix != "" {
		ex = append(ex, logExprs(r.Log)...)
		if r.Verdict == render.VerdictNone {
			return ex, nil
		}
	}
	v, err := verdictExpr(r)
	if err != nil {
		return nil, err
	}
	return append(ex, v), nil
}

// familyExprs match the rule's family (none for FamilyAny).
func familyExprs(f render.Family) []expr.Any {
	var proto byte
	switch f {
	case render.Family4:
		proto = unix.NFPROTO_IPV4
	case render.Family6:
		proto = unix.NFPROTO_IPV6
	default:
		return nil
	}
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{proto}}}
}

// packetExprs match the conntrack state, TCP flags and ICMPv6 type.
func packetExprs(r *render.Rule) []expr.Any {
	var ex []expr.Any
	switch r.CtState {
	case render.CtEstablishedRelated:
		ex = append(ex, ctStateIn(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)...)
	case render.CtInvalid:
		ex = append(ex, ctStateIn(expr.CtStateBitINVALID)...)
	case render.CtNew:
		ex = append(ex, ctStateIn(expr.CtStateBitNEW)...)
	}
	if r.TCPNotSYN {
		// `tcp flags & (fin | syn | rst | ack) != syn`: the flags byte is
		// at offset 13 of the TCP header.
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 1,
				Mask: []byte{tcpFIN | tcpSYN | tcpRST | tcpACK}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: []byte{tcpSYN}})
	}
	if r.ICMPv6Type != 0 {
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{r.ICMPv6Type}})
	}
	return ex
}

// setExprs match the rule's address, port and named-port sets.
func setExprs(r *render.Rule) []expr.Any {
	var ex []expr.Any
	v6 := r.Family == render.Family6
	if r.SaddrSet != "" {
		ex = append(ex, addr(v6, true, reg1), lookup(r.SaddrSet, reg1))
	}
	if r.DaddrSet != "" {
		ex = append(ex, addr(v6, false, reg1), lookup(r.DaddrSet, reg1))
	}
	if r.ProtoPortSet != "" {
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
			&expr.Payload{DestRegister: reg32_0 + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup(r.ProtoPortSet, reg1))
	}
	if r.DaddrProtoPortSet != "" {
		next := uint32(reg32_0 + 1)
		if v6 {
			next = reg32_0 + 4
		}
		ex = append(ex, addr(v6, false, reg1),
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: next},
			&expr.Payload{DestRegister: next + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup(r.DaddrProtoPortSet, reg1))
	}
	return ex
}

// vmapExprs look the packet's source (or destination) up in the rule's
// verdict map.
func vmapExprs(r *render.Rule) []expr.Any {
	name := r.SaddrMap
	if name == "" {
		name = r.DaddrMap
	}
	return []expr.Any{addr(r.Family == render.Family6, r.SaddrMap != "", reg1),
		&expr.Lookup{SourceRegister: reg1, DestRegister: 0, IsDestRegSet: true, SetName: name}}
}

// logExprs rate-limit, then log to the NFLOG group with the prefix.
func logExprs(l render.Log) []expr.Any {
	var ex []expr.Any
	if l.Rate > 0 {
		ex = append(ex, &expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(l.Rate), Unit: expr.LimitTimeSecond, Burst: l.Burst})
	}
	return append(ex, &expr.Log{
		Key:   1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX,
		Group: l.Group,
		Data:  []byte(l.Prefix),
	})
}

func verdictExpr(r *render.Rule) (expr.Any, error) {
	switch r.Verdict {
	case render.Accept:
		return &expr.Verdict{Kind: expr.VerdictAccept}, nil
	case render.Drop:
		return &expr.Verdict{Kind: expr.VerdictDrop}, nil
	case render.Jump:
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Target}, nil
	}
	return nil, fmt.Errorf("rule %q has no verdict", r.Text())
}

// TCP header flag bits.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

func ctStateIn(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// addr loads the source or destination address of the family into reg.
func addr(v6, source bool, reg uint32) *expr.Payload {
	p := &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	switch {
	case !v6 && source:
		p.Offset = 12
	case v6 && source:
		p.Offset, p.Len = 8, 16
	case v6:
		p.Offset, p.Len = 24, 16
	}
	return p
}

func lookup(set string, reg uint32) *expr.Lookup {
	return &expr.Lookup{SourceRegister: reg, SetName: set}
}
