package probe

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/internal/testenv"
)

func TestSCTPRoundTrip(t *testing.T) {
	cases := []sctpPacket{
		{SrcPort: 40000, DstPort: 80, ChunkType: chunkInit, InitiateTag: 0xdeadbeef},
		{SrcPort: 80, DstPort: 40000, VTag: 0xdeadbeef, ChunkType: chunkInitAck, InitiateTag: 7, Cookie: []byte("x/a")},
		{SrcPort: 81, DstPort: 1, VTag: 1, ChunkType: chunkInitAck, InitiateTag: 9, Cookie: []byte("kube-system/cluster-dns")},
	}
	for _, want := range cases {
		b := encodeSCTP(want)
		if len(b)%4 != 0 {
			t.Errorf("packet length %d is not padded to 4 bytes", len(b))
		}
		got, err := decodeSCTP(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", want, err)
		}
		if got.SrcPort != want.SrcPort || got.DstPort != want.DstPort || got.VTag != want.VTag ||
			got.ChunkType != want.ChunkType || got.InitiateTag != want.InitiateTag || string(got.Cookie) != string(want.Cookie) {
			t.Errorf("round trip: got %+v, want %+v", got, want)
		}
		b[len(b)-1] ^= 0xff
		if _, err := decodeSCTP(b); err == nil {
			t.Errorf("corrupted packet %+v decoded without a checksum error", want)
		}
	}
}

// A known INIT checked against the CRC32c that Linux and Wireshark compute,
// so the byte order of the checksum cannot silently flip.
func TestSCTPChecksumByteOrder(t *testing.T) {
	b := encodeSCTP(sctpPacket{SrcPort: 1, DstPort: 2, ChunkType: chunkInit, InitiateTag: 3})
	want := []byte{0x00, 0x01, 0x00, 0x02, 0, 0, 0, 0}
	if string(b[:8]) != string(want) {
		t.Fatalf("header = % x, want % x", b[:8], want)
	}
	crc := uint32(b[8]) | uint32(b[9])<<8 | uint32(b[10])<<16 | uint32(b[11])<<24
	zeroed := append([]byte(nil), b...)
	copy(zeroed[8:12], []byte{0, 0, 0, 0})
	if got := crc32c(zeroed); got != crc {
		t.Fatalf("checksum stored as %08x, computed %08x", crc, got)
	}
}

// crc32c is a bitwise reference implementation of CRC-32C (reflected
// polynomial 0x82F63B78), independent of hash/crc32.
func crc32c(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ 0x82f63b78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestDNSAnswers(t *testing.T) {
	cases := []struct {
		name    string
		want    string
		wantErr bool
	}{
		{name: "10-244-1-5.x.pod.cluster.local", want: "10.244.1.5"},
		{name: "10-244-2-9.Kube-System.pod.cluster.local.", want: "10.244.2.9"},
		{name: "orders.shop.svc.cluster.local", wantErr: true},
		{name: "example.com", wantErr: true},
		{name: "1-2-3.x.pod.cluster.local", wantErr: true},
	}
	for _, tc := range cases {
		q, err := encodeDNSQuery(42, tc.name, dnsTypeA)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := answerDNS(q, "cluster.local")
		if err != nil {
			t.Fatalf("%s: answer: %v", tc.name, err)
		}
		got, err := parseDNSAnswer(resp, 42)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: got %s, want an error", tc.name, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("%s: got %v (%v), want %s", tc.name, got, err, tc.want)
		}
	}
	if _, err := answerDNS([]byte{1, 2, 3}, "cluster.local"); err == nil {
		t.Error("a 3-byte message was answered")
	}
}

func TestServeAndProbeOnLoopback(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := ServerConfig{Name: "x/a", TCP: []int{18431}, UDP: []int{18431}, DNSPort: 18453}
	root := testenv.IsRoot(t)
	if root {
		cfg.SCTP = []int{18431}
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	protos := []Protocol{TCP, UDP}
	if root {
		protos = append(protos, SCTP)
	} else {
		t.Log("not root: raw SCTP sockets need CAP_NET_RAW, SCTP is covered by the e2e suite")
	}
	for _, p := range protos {
		name, err := Probe(p, netip.AddrPortFrom(lo, 18431), 2*time.Second)
		if err != nil || name != "x/a" {
			t.Errorf("%s probe: got %q, %v; want x/a", p, name, err)
		}
		// Nothing listens on 18432: the probe must fail, and quickly enough.
		start := time.Now()
		if name, err := Probe(p, netip.AddrPortFrom(lo, 18432), 500*time.Millisecond); err == nil {
			t.Errorf("%s probe of a closed port answered %q", p, name)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s probe of a closed port took %s", p, d)
		}
	}
	for _, p := range []Protocol{UDP, TCP} {
		got, err := ProbeDNS(p, netip.AddrPortFrom(lo, 18453), "10-244-1-7.y.pod.cluster.local", 2*time.Second)
		if err != nil || got.String() != "10.244.1.7" {
			t.Errorf("dns over %s: got %v, %v", p, got, err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve returned %v", err)
	}
}

// CoreDNS (miekg/dns) spells answer names out unless compression is asked
// for, and may put a CNAME before the A record.
func TestDNSAnswerUncompressed(t *testing.T) {
	q, err := encodeDNSQuery(7, "orders.shop.svc.cluster.local", dnsTypeA)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := encodeDNSName("orders.shop.svc.cluster.local")
	target, _ := encodeDNSName("orders-0.shop.svc.cluster.local")
	resp := append([]byte(nil), q...)
	binary.BigEndian.PutUint16(resp[2:], 0x8180) // QR, RD, RA
	binary.BigEndian.PutUint16(resp[6:], 2)      // ANCOUNT
	rr := func(name []byte, typ uint16, data []byte) {
		resp = append(resp, name...)
		resp = binary.BigEndian.AppendUint16(resp, typ)
		resp = binary.BigEndian.AppendUint16(resp, dnsClassIN)
		resp = binary.BigEndian.AppendUint32(resp, 5)
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(data)))
		resp = append(resp, data...)
	}
	rr(name, 5, target) // CNAME
	rr(target, dnsTypeA, []byte{10, 96, 0, 42})
	got, err := parseDNSAnswer(resp, 7)
	if err != nil || got.String() != "10.96.0.42" {
		t.Fatalf("got %v (%v), want 10.96.0.42", got, err)
	}
	if _, err := parseDNSAnswer(resp[:len(resp)-3], 7); err == nil {
		t.Error("a truncated A record was accepted")
	}
}
