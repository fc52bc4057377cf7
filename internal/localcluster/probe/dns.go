package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// A tiny authoritative DNS server for the local cluster's cluster-dns pod: it
// answers A queries for pod records (a-b-c-d.<namespace>.pod.cluster.local, as
// kube-dns does) and NXDOMAIN for everything else. That is enough for a pod in
// a zero-trust namespace to show that its DNS traffic still flows.

const (
	dnsTypeA      = 1
	dnsClassIN    = 1
	dnsRcodeOK    = 0
	dnsRcodeNX    = 3
	dnsRcodeError = 1
	dnsHeaderLen  = 12
)

type dnsQuestion struct {
	Name  string // lower case, no trailing dot
	Type  uint16
	Class uint16
}

// encodeDNSQuery renders a standard recursive query for name.
func encodeDNSQuery(id uint16, name string, qtype uint16) ([]byte, error) {
	b := make([]byte, dnsHeaderLen, 64)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], 0x0100) // RD
	binary.BigEndian.PutUint16(b[4:], 1)      // QDCOUNT
	qname, err := encodeDNSName(name)
	if err != nil {
		return nil, err
	}
	b = append(b, qname...)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, dnsClassIN)
	return b, nil
}

func encodeDNSName(name string) ([]byte, error) {
	var b []byte
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 {
			return nil, fmt.Errorf("invalid dns name %q", name)
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0), nil
}

// parseDNSQuestion reads the header and the single question of a query; it
// returns the question and the offset just past it.
func parseDNSQuestion(msg []byte) (dnsQuestion, int, error) {
	if len(msg) < dnsHeaderLen {
		return dnsQuestion{}, 0, errors.New("short dns message")
	}
	if binary.BigEndian.Uint16(msg[4:]) != 1 {
		return dnsQuestion{}, 0, errors.New("dns message must hold exactly one question")
	}
	off := dnsHeaderLen
	var labels []string
	for {
		if off >= len(msg) {
			return dnsQuestion{}, 0, errors.New("truncated dns name")
		}
		l := int(msg[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(msg) {
			return dnsQuestion{}, 0, errors.New("bad dns label")
		}
		labels = append(labels, strings.ToLower(string(msg[off:off+l])))
		off += l
	}
	if off+4 > len(msg) {
		return dnsQuestion{}, 0, errors.New("truncated dns question")
	}
	q := dnsQuestion{
		Name:  strings.Join(labels, "."),
		Type:  binary.BigEndian.Uint16(msg[off:]),
		Class: binary.BigEndian.Uint16(msg[off+2:]),
	}
	return q, off + 4, nil
}

// podRecordAddr resolves a-b-c-d.<namespace>.pod.<domain> to a.b.c.d.
func podRecordAddr(name, domain string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".pod."+domain)
	if !ok {
		return netip.Addr{}, false
	}
	first, _, ok := strings.Cut(rest, ".")
	if !ok {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(strings.ReplaceAll(first, "-", "."))
	if err != nil || !addr.Is4() {
		return netip.Addr{}, false
	}
	return addr, true
}

// answerDNS builds the response to a query.
func answerDNS(query []byte, domain string) ([]byte, error) {
	q, end, err := parseDNSQuestion(query)
	if err != nil {
		return nil, err
	}
	resp := append([]byte(nil), query[:end]...)
	flags := uint16(0x8400) | binary.BigEndian.Uint16(query[2:])&0x0100 // QR, AA, copy RD
	binary.BigEndian.PutUint16(resp[6:], 0)                             // ANCOUNT
	binary.BigEndian.PutUint16(resp[8:], 0)                             // NSCOUNT
	binary.BigEndian.PutUint16(resp[10:], 0)                            // ARCOUNT
	addr, isPod := podRecordAddr(q.Name, domain)
	switch {
	case q.Class != dnsClassIN:
		flags |= dnsRcodeError
	case !isPod:
		flags |= dnsRcodeNX
	case q.Type == dnsTypeA:
		binary.BigEndian.PutUint16(resp[6:], 1)
		resp = append(resp, 0xc0, dnsHeaderLen) // pointer to the question's name
		resp = binary.BigEndian.AppendUint16(resp, dnsTypeA)
		resp = binary.BigEndian.AppendUint16(resp, dnsClassIN)
		resp = binary.BigEndian.AppendUint32(resp, 30) // TTL
		resp = binary.BigEndian.AppendUint16(resp, 4)
		a := addr.As4()
		resp = append(resp, a[:]...)
	}
	binary.BigEndian.PutUint16(resp[2:], flags)
	return resp, nil
}

// parseDNSAnswer checks a response to the query with id and returns the first
// A record.
func parseDNSAnswer(resp []byte, id uint16) (netip.Addr, error) {
	if len(resp) < dnsHeaderLen || binary.BigEndian.Uint16(resp[0:]) != id {
		return netip.Addr{}, errors.New("dns response does not match the query")
	}
	flags := binary.BigEndian.Uint16(resp[2:])
	if flags&0x8000 == 0 {
		return netip.Addr{}, errors.New("dns message is not a response")
	}
	if rcode := flags & 0x000f; rcode != dnsRcodeOK {
		return netip.Addr{}, fmt.Errorf("dns rcode %d", rcode)
	}
	_, off, err := parseDNSQuestion(resp)
	if err != nil {
		return netip.Addr{}, err
	}
	answers := int(binary.BigEndian.Uint16(resp[6:]))
	if answers == 0 {
		return netip.Addr{}, errors.New("dns response has no answer")
	}
	// Answers' names come compressed (a 2-byte pointer, as our server
	// writes them) or spelled out: miekg/dns, and so CoreDNS, compresses
	// only when asked to.
	for range answers {
		if off = skipDNSName(resp, off); off < 0 || off+10 > len(resp) {
			return netip.Addr{}, errors.New("truncated dns answer")
		}
		rr := resp[off:]
		typ, rdlen := binary.BigEndian.Uint16(rr[0:]), int(binary.BigEndian.Uint16(rr[8:]))
		if off+10+rdlen > len(resp) {
			return netip.Addr{}, errors.New("truncated dns answer")
		}
		if typ == dnsTypeA && rdlen == 4 {
			return netip.AddrFrom4([4]byte(rr[10:14])), nil
		}
		off += 10 + rdlen
	}
	return netip.Addr{}, errors.New("dns response has no A record")
}

// skipDNSName returns the offset just past the name at off (labels ending
// in a zero byte or a pointer), or -1 when the message ends first.
func skipDNSName(msg []byte, off int) int {
	for off < len(msg) {
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xc0 == 0xc0:
			if off+2 > len(msg) {
				return -1
			}
			return off + 2
		}
		off += 1 + l
	}
	return -1
}
