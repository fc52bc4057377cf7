package probe

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// SCTP without the kernel's SCTP stack.
//
// Kernels built without CONFIG_IP_SCTP (this project's CI kernel is one) have
// no SCTP sockets, yet netfilter still parses, tracks (nf_conntrack_proto_sctp)
// and filters SCTP. A probe therefore speaks the first two packets of a real
// SCTP association over raw IP sockets: the client sends an INIT, the server
// answers with an INIT ACK whose verification tag is the client's initiate tag.
// Conntrack sees a new association and its reply, exactly as it would for a
// kernel SCTP client, so a policy that drops SCTP to a port drops the INIT.

const (
	sctpProto        = 132
	sctpHeaderLen    = 12
	chunkInit        = 1
	chunkInitAck     = 2
	paramStateCookie = 7
	initBodyLen      = 16 // initiate tag, a_rwnd, streams out/in, initial TSN
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sctpPacket is the part of an SCTP packet a probe needs: the common header
// and the first chunk.
type sctpPacket struct {
	SrcPort, DstPort uint16
	VTag             uint32
	ChunkType        uint8
	InitiateTag      uint32 // INIT and INIT ACK only
	Cookie           []byte // INIT ACK only
}

// encodeSCTP renders an INIT or INIT ACK packet with a valid CRC32c checksum
// (conntrack drops SCTP packets with a bad checksum as invalid).
func encodeSCTP(p sctpPacket) []byte {
	chunkLen := 4 + initBodyLen
	var cookie []byte
	if p.ChunkType == chunkInitAck {
		cookie = make([]byte, 4+len(p.Cookie))
		binary.BigEndian.PutUint16(cookie[0:], paramStateCookie)
		binary.BigEndian.PutUint16(cookie[2:], uint16(4+len(p.Cookie)))
		copy(cookie[4:], p.Cookie)
		chunkLen += len(cookie)
	}
	padded := (chunkLen + 3) &^ 3
	b := make([]byte, sctpHeaderLen+padded)
	binary.BigEndian.PutUint16(b[0:], p.SrcPort)
	binary.BigEndian.PutUint16(b[2:], p.DstPort)
	binary.BigEndian.PutUint32(b[4:], p.VTag)
	c := b[sctpHeaderLen:]
	c[0] = p.ChunkType
	binary.BigEndian.PutUint16(c[2:], uint16(chunkLen))
	binary.BigEndian.PutUint32(c[4:], p.InitiateTag)
	binary.BigEndian.PutUint32(c[8:], 65535) // a_rwnd
	binary.BigEndian.PutUint16(c[12:], 1)    // outbound streams
	binary.BigEndian.PutUint16(c[14:], 1)    // inbound streams
	binary.BigEndian.PutUint32(c[16:], p.InitiateTag)
	copy(c[20:], cookie)
	// RFC 9260 appendix A: CRC32c over the packet with a zero checksum field,
	// stored in little-endian byte order (as Linux does).
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b, castagnoli))
	return b
}

var errNotSCTP = errors.New("not an sctp init or init ack")

// decodeSCTP parses an SCTP packet (without IP header) and checks its CRC.
func decodeSCTP(b []byte) (sctpPacket, error) {
	if len(b) < sctpHeaderLen+4+initBodyLen {
		return sctpPacket{}, errNotSCTP
	}
	sum := binary.LittleEndian.Uint32(b[8:])
	tmp := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(tmp[8:], 0)
	if crc32.Checksum(tmp, castagnoli) != sum {
		return sctpPacket{}, errors.New("bad sctp checksum")
	}
	p := sctpPacket{
		SrcPort: binary.BigEndian.Uint16(b[0:]),
		DstPort: binary.BigEndian.Uint16(b[2:]),
		VTag:    binary.BigEndian.Uint32(b[4:]),
	}
	c := b[sctpHeaderLen:]
	p.ChunkType = c[0]
	if p.ChunkType != chunkInit && p.ChunkType != chunkInitAck {
		return p, errNotSCTP
	}
	chunkLen := int(binary.BigEndian.Uint16(c[2:]))
	if chunkLen > len(c) || chunkLen < 4+initBodyLen {
		return p, errNotSCTP
	}
	p.InitiateTag = binary.BigEndian.Uint32(c[4:])
	params := c[4+initBodyLen : chunkLen]
	for len(params) >= 4 {
		typ := binary.BigEndian.Uint16(params[0:])
		l := int(binary.BigEndian.Uint16(params[2:]))
		if l < 4 || l > len(params) {
			break
		}
		if typ == paramStateCookie {
			p.Cookie = append([]byte(nil), params[4:l]...)
		}
		params = params[min((l+3)&^3, len(params)):]
	}
	return p, nil
}

// stripIPv4Header returns the payload of a packet read from an IPv4 raw
// socket, which delivers the IP header too.
func stripIPv4Header(b []byte) ([]byte, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil, false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || ihl > len(b) {
		return nil, false
	}
	return b[ihl:], true
}
