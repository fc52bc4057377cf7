// Package probe is the wire protocol between the local cluster's pods: the
// server every pod runs (hack/podserver) and the client the probe matrix,
// the demo and `podserver probe` use. Each probe is a real connection: a TCP
// handshake, a UDP round trip, an SCTP INIT / INIT ACK exchange, or a DNS
// query; the server answers with its name so a probe also proves where it
// landed.
package probe

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ServerConfig says what a pod serves.
type ServerConfig struct {
	// Name is the answer to every probe, e.g. "x/a".
	Name string
	TCP  []int
	UDP  []int
	SCTP []int
	// DNSPort, when set, serves DNS on UDP and TCP on that port.
	DNSPort int
	// Domain is the cluster domain for DNS pod records.
	Domain string
}

// Serve binds every port of cfg, calls ready once all are bound, and serves
// until ctx is done.
func Serve(ctx context.Context, cfg ServerConfig, ready func()) error {
	if cfg.Domain == "" {
		cfg.Domain = "cluster.local"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 16)
	ls := &listeners{ctx: ctx}
	defer ls.closeAndWait()
	if err := ls.listenAll(cfg, errs); err != nil {
		return err
	}
	if ready != nil {
		ready()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

func serveDNSOverTCP(c net.Conn, domain string) {
	r := bufio.NewReader(c)
	for {
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(r, q); err != nil {
			return
		}
		resp, err := answerDNS(q, domain)
		if err != nil {
			return
		}
		if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(resp)))); err != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// sctpResponder answers SCTP INITs to its ports with an INIT ACK carrying the
// pod's name as state cookie.
type sctpResponder struct {
	name  string
	ports map[uint16]bool
	fd    int
	once  sync.Once
}

func newSCTPResponder(name string, ports []int) (*sctpResponder, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, sctpProto)
	if err != nil {
		return nil, fmt.Errorf("open raw sctp socket: %w", err)
	}
	// A receive timeout lets the loop notice that the server is stopping.
	tv := unix.NsecToTimeval(int64(500 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("set sctp receive timeout: %w", err)
	}
	s := &sctpResponder{name: name, ports: map[uint16]bool{}, fd: fd}
	for _, p := range ports {
		s.ports[uint16(p)] = true
	}
	return s, nil
}

func (s *sctpResponder) Close() error {
	var err error
	s.once.Do(func() { err = unix.Close(s.fd) })
	return err
}

func (s *sctpResponder) serve(ctx context.Context, errs chan<- error) {
	buf := make([]byte, 2048)
	for ctx.Err() == nil {
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if ctx.Err() == nil {
				errs <- fmt.Errorf("read sctp: %w", err)
			}
			return
		}
		payload, ok := stripIPv4Header(buf[:n])
		if !ok {
			continue
		}
		in, err := decodeSCTP(payload)
		if err != nil || in.ChunkType != chunkInit || in.VTag != 0 || !s.ports[in.DstPort] {
			continue
		}
		out := encodeSCTP(sctpPacket{
			SrcPort:     in.DstPort,
			DstPort:     in.SrcPort,
			VTag:        in.InitiateTag,
			ChunkType:   chunkInitAck,
			InitiateTag: in.InitiateTag ^ 0x5a5a5a5a | 1,
			Cookie:      []byte(s.name),
		})
		_ = unix.Sendto(s.fd, out, 0, from)
	}
}

// ParsePorts parses "80,81" into ports.
func ParsePorts(s string) ([]int, error) {
	var ports []int
	if s == "" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("invalid port %q", f)
		}
		ports = append(ports, p)
	}
	return ports, nil
}
