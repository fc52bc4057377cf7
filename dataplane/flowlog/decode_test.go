package flowlog

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// ipv4 builds an IPv4 header (ihl 5, or 6 with options) followed by l4.
func ipv4(proto byte, src, dst string, options bool, fragOffset uint16, l4 []byte) []byte {
	ihl := 5
	if options {
		ihl = 6
	}
	h := make([]byte, ihl*4)
	h[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(l4)))
	binary.BigEndian.PutUint16(h[6:], fragOffset)
	h[8], h[9] = 64, proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return append(h, l4...)
}

// ipv6 builds an IPv6 header whose next header is next, then rest.
func ipv6(next byte, src, dst string, rest []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(rest)))
	h[6], h[7] = next, 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, rest...)
}

// ports4 is the start of a TCP/UDP/SCTP header.
func ports4(src, dst uint16) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b, src)
	binary.BigEndian.PutUint16(b[2:], dst)
	return b
}

// ext6 is an 8-byte IPv6 extension header (hop-by-hop, routing, options).
func ext6(next byte) []byte { return []byte{next, 0, 1, 4, 0, 0, 0, 0} }

func frag6(next byte, offset uint16) []byte {
	b := []byte{next, 0, 0, 0, 0, 0, 0, 1}
	binary.BigEndian.PutUint16(b[2:], offset<<3)
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestDecodePacket(t *testing.T) {
	a4, b4 := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.2")
	a6, b6 := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	tests := []struct {
		name    string
		in      []byte
		want    packet
		wantErr bool
	}{
		{"ipv4 tcp", ipv4(6, "10.1.0.1", "10.2.0.2", false, 0, ports4(40000, 80)), packet{6, a4, b4, 40000, 80}, false},
		{"ipv4 udp with options", ipv4(17, "10.1.0.1", "10.2.0.2", true, 0, ports4(5353, 53)), packet{17, a4, b4, 5353, 53}, false},
		{"ipv4 sctp", ipv4(132, "10.1.0.1", "10.2.0.2", false, 0, ports4(1, 90)), packet{132, a4, b4, 1, 90}, false},
		{"ipv4 icmp has no ports", ipv4(1, "10.1.0.1", "10.2.0.2", false, 0, []byte{8, 0, 0, 0, 0, 1, 0, 1}), packet{1, a4, b4, 0, 0}, false},
		{"ipv4 later fragment has no ports", ipv4(6, "10.1.0.1", "10.2.0.2", false, 185, []byte{1, 2}), packet{6, a4, b4, 0, 0}, false},
		{"ipv4 tcp cut before the ports", ipv4(6, "10.1.0.1", "10.2.0.2", false, 0, []byte{1, 2}), packet{}, true},
		{"ipv4 header cut", ipv4(6, "10.1.0.1", "10.2.0.2", false, 0, nil)[:12], packet{}, true},
		{"ipv4 bad ihl", append([]byte{0x44}, make([]byte, 30)...), packet{}, true},
		{"ipv6 tcp", ipv6(6, "fd00::1", "fd00::2", ports4(40000, 8080)), packet{6, a6, b6, 40000, 8080}, false},
		{"ipv6 udp after hop-by-hop and destination options", ipv6(0, "fd00::1", "fd00::2", cat(ext6(60), ext6(17), ports4(1000, 53))), packet{17, a6, b6, 1000, 53}, false},
		{"ipv6 sctp after routing", ipv6(43, "fd00::1", "fd00::2", cat(ext6(132), ports4(7, 90))), packet{132, a6, b6, 7, 90}, false},
		{"ipv6 first fragment", ipv6(44, "fd00::1", "fd00::2", cat(frag6(6, 0), ports4(2, 3))), packet{6, a6, b6, 2, 3}, false},
		{"ipv6 later fragment", ipv6(44, "fd00::1", "fd00::2", cat(frag6(17, 100), []byte{9, 9})), packet{17, a6, b6, 0, 0}, false},
		{"icmpv6", ipv6(58, "fd00::1", "fd00::2", []byte{128, 0, 0, 0}), packet{58, a6, b6, 0, 0}, false},
		{"ipv6 extension header cut", ipv6(0, "fd00::1", "fd00::2", []byte{6, 3}), packet{}, true},
		{"ipv6 extension header longer than the copy", ipv6(0, "fd00::1", "fd00::2", []byte{6, 3, 0, 0, 0, 0, 0, 0}), packet{}, true},
		{"ipv6 header cut", ipv6(6, "fd00::1", "fd00::2", nil)[:39], packet{}, true},
		{"empty", nil, packet{}, true},
		{"not ip", []byte{0x50, 0, 0}, packet{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePacket(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// attr encodes one netlink attribute.
func attr(typ uint16, v []byte) []byte { return appendAttr(nil, typ, v) }

func TestParseLogMessage(t *testing.T) {
	pkt := ipv4(6, "10.1.0.1", "10.2.0.2", false, 0, ports4(1, 2))
	seq := binary.BigEndian.AppendUint32(nil, 42)
	ts := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 1700000000), 250000)
	hdr := []byte{2, 0, 0x07, 0x9b}
	tests := []struct {
		name    string
		in      []byte
		want    logMessage
		wantErr bool
	}{
		{"all attributes", cat(hdr, attr(attrPacketHdr, []byte{8, 0, 2, 0}), attr(attrPrefix, []byte("palisade:drop:in:abc\x00")),
			attr(attrPayload, pkt), attr(attrSeq, seq), attr(attrTimestamp, ts), attr(99, []byte{1})),
			logMessage{Prefix: "palisade:drop:in:abc", Payload: pkt, Seq: 42, HasSeq: true, Time: time.Unix(1700000000, 250000000)}, false},
		{"no seq, no time", cat(hdr, attr(attrPrefix, []byte("x\x00")), attr(attrPayload, pkt)), logMessage{Prefix: "x", Payload: pkt}, false},
		{"short seq", cat(hdr, attr(attrSeq, []byte{1})), logMessage{}, true},
		{"short timestamp", cat(hdr, attr(attrTimestamp, []byte{1, 2})), logMessage{}, true},
		{"attribute longer than the message", cat(hdr, []byte{40, 0, 9, 0, 1}), logMessage{}, true},
		{"truncated attribute header", cat(hdr, []byte{8, 0}), logMessage{}, true},
		{"no nfgenmsg", []byte{2}, logMessage{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLogMessage(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBindMessage(t *testing.T) {
	m := bindMessage(1947)
	if m.Header.Type != subsysULOG<<8|msgConfig {
		t.Errorf("type %#x", m.Header.Type)
	}
	if g := binary.BigEndian.Uint16(m.Data[2:4]); g != 1947 {
		t.Errorf("res_id %d", g)
	}
	seen := map[uint16][]byte{}
	if err := walkAttrs(m.Data[nfgenmsgLen:], func(typ uint16, v []byte) error { seen[typ] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[uint16][]byte{
		cfgAttrCmd:   {cfgCmdBind},
		cfgAttrMode:  {0, 0, 0, copyRange, copyPacket, 0},
		cfgAttrFlags: {0, cfgFlagSeq},
	}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("attributes %v, want %v", seen, want)
	}
}
