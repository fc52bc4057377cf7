package flowlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// This file decodes NFLOG messages (nfnetlink_log) and the packets they
// carry. It is pure: bytes in, values out.

// nfnetlink_log constants (linux/netfilter/nfnetlink_log.h).
const (
	subsysULOG = 4 // NFNL_SUBSYS_ULOG

	msgPacket = 0 // NFULNL_MSG_PACKET
	msgConfig = 1 // NFULNL_MSG_CONFIG

	attrPacketHdr = 1  // NFULA_PACKET_HDR
	attrTimestamp = 3  // NFULA_TIMESTAMP
	attrPayload   = 9  // NFULA_PAYLOAD
	attrPrefix    = 10 // NFULA_PREFIX
	attrSeq       = 12 // NFULA_SEQ (per-instance sequence number)

	cfgAttrCmd   = 1 // NFULA_CFG_CMD
	cfgAttrMode  = 2 // NFULA_CFG_MODE
	cfgAttrQThr  = 4 // NFULA_CFG_QTHRESH
	cfgAttrFlags = 6 // NFULA_CFG_FLAGS

	cfgCmdBind    = 1 // NFULNL_CFG_CMD_BIND
	cfgCmdUnbind  = 2 // NFULNL_CFG_CMD_UNBIND
	copyPacket    = 2 // NFULNL_COPY_PACKET
	cfgFlagSeq    = 1 // NFULNL_CFG_F_SEQ
	nfgenmsgLen   = 4 // struct nfgenmsg
	nlaTypeMask   = 0x3fff
	nfnetlinkV0   = 0
	ipProtoICMP   = 1
	ipProtoTCP    = 6
	ipProtoUDP    = 17
	ipProtoICMPv6 = 58
	ipProtoSCTP   = 132
)

// copyRange is how many bytes of each packet the kernel copies: an IPv6
// header with a few extension headers and the ports fit.
const copyRange = 160

// logMessage is one NFLOG packet message, undecoded beyond its attributes.
type logMessage struct {
	Prefix  string
	Payload []byte
	// Seq is the instance's sequence number when HasSeq.
	Seq    uint32
	HasSeq bool
	// Time is the packet's timestamp, zero when the kernel sent none.
	Time time.Time
}

var errShort = errors.New("short message")

// parseLogMessage reads the body of an NFLOG packet message: a nfgenmsg
// header, then netlink attributes.
func parseLogMessage(body []byte) (logMessage, error) {
	var m logMessage
	if len(body) < nfgenmsgLen {
		return m, errShort
	}
	err := walkAttrs(body[nfgenmsgLen:], func(typ uint16, v []byte) error {
		switch typ {
		case attrPrefix:
			m.Prefix = cString(v)
		case attrPayload:
			m.Payload = v
		case attrSeq:
			if len(v) < 4 {
				return fmt.Errorf("seq attribute of %d bytes", len(v))
			}
			m.Seq, m.HasSeq = binary.BigEndian.Uint32(v), true
		case attrTimestamp:
			if len(v) < 16 {
				return fmt.Errorf("timestamp attribute of %d bytes", len(v))
			}
			sec, usec := binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
			m.Time = time.Unix(int64(sec), int64(usec)*1000)
		}
		return nil
	})
	return m, err
}

// walkAttrs calls fn for each netlink attribute (native-endian length and
// type, values padded to 4 bytes).
func walkAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return errShort
		}
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < 4 || l > len(b) {
			return fmt.Errorf("attribute length %d of %d bytes left", l, len(b))
		}
		if err := fn(typ, b[4:l]); err != nil {
			return err
		}
		next := (l + 3) &^ 3
		if next > len(b) {
			next = len(b)
		}
		b = b[next:]
	}
	return nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// packet is what a flow needs from an IP packet.
type packet struct {
	Protocol         uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// decodePacket reads the addresses, protocol and ports of an IPv4 or IPv6
// packet (as much of it as NFLOG copied). IPv6 extension headers are
// skipped when they are the simple ones (hop-by-hop, routing, destination
// options, fragment); a non-first fragment has no ports. ICMP and other
// protocols have ports 0.
func decodePacket(b []byte) (packet, error) {
	if len(b) < 1 {
		return packet{}, errShort
	}
	switch b[0] >> 4 {
	case 4:
		return decode4(b)
	case 6:
		return decode6(b)
	}
	return packet{}, fmt.Errorf("IP version %d", b[0]>>4)
}

func decode4(b []byte) (packet, error) {
	if len(b) < 20 {
		return packet{}, errShort
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || ihl > len(b) {
		return packet{}, fmt.Errorf("IPv4 header length %d", ihl)
	}
	p := packet{
		Protocol: b[9],
		Src:      netip.AddrFrom4([4]byte(b[12:16])),
		Dst:      netip.AddrFrom4([4]byte(b[16:20])),
	}
	// Fragment offset other than 0: no transport header here.
	if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
		return p, nil
	}
	return p, ports(&p, b[ihl:])
}

// IPv6 extension headers that decode6 skips.
const (
	ext6HopByHop = 0
	ext6Routing  = 43
	ext6Fragment = 44
	ext6DestOpts = 60
)

func decode6(b []byte) (packet, error) {
	if len(b) < 40 {
		return packet{}, errShort
	}
	p := packet{Src: netip.AddrFrom16([16]byte(b[8:24])), Dst: netip.AddrFrom16([16]byte(b[24:40]))}
	next, rest := b[6], b[40:]
	for range 8 {
		switch next {
		case ext6HopByHop, ext6Routing, ext6DestOpts:
			if len(rest) < 8 {
				return packet{}, errShort
			}
			l := (int(rest[1]) + 1) * 8
			if l > len(rest) {
				return packet{}, errShort
			}
			next, rest = rest[0], rest[l:]
			continue
		case ext6Fragment:
			if len(rest) < 8 {
				return packet{}, errShort
			}
			offset := binary.BigEndian.Uint16(rest[2:4]) >> 3
			next, rest = rest[0], rest[8:]
			if offset != 0 {
				p.Protocol = next
				return p, nil
			}
			continue
		}
		p.Protocol = next
		return p, ports(&p, rest)
	}
	return packet{}, errors.New("too many IPv6 extension headers")
}

// ports reads the source and destination ports of TCP, UDP and SCTP (the
// first four bytes of each header).
func ports(p *packet, l4 []byte) error {
	switch p.Protocol {
	case ipProtoTCP, ipProtoUDP, ipProtoSCTP:
		if len(l4) < 4 {
			return fmt.Errorf("protocol %d header cut at %d bytes", p.Protocol, len(l4))
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	}
	return nil
}
