package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// listeners owns a server's sockets and the goroutines serving them, so
// Serve closes them all and waits for the goroutines however it returns.
type listeners struct {
	ctx     context.Context
	lc      net.ListenConfig
	wg      sync.WaitGroup
	closers []io.Closer
}

func (ls *listeners) run(f func()) {
	ls.wg.Add(1)
	go func() { defer ls.wg.Done(); f() }()
}

// closeAndWait closes the sockets, which ends the goroutines blocked on
// them, then waits for those goroutines.
func (ls *listeners) closeAndWait() {
	for _, c := range ls.closers {
		_ = c.Close()
	}
	ls.wg.Wait()
}

// listenAll listens on every port cfg names: each TCP and UDP port answers
// with the server's name, the DNS port with cluster DNS answers, and the
// SCTP responder reports its failure on errs.
func (ls *listeners) listenAll(cfg ServerConfig, errs chan<- error) error {
	greet := func(c net.Conn) { _, _ = io.WriteString(c, cfg.Name+"\n") }
	echoName := func([]byte) []byte { return []byte(cfg.Name) }
	for _, p := range cfg.TCP {
		if err := ls.listenTCP(p, greet); err != nil {
			return err
		}
	}
	for _, p := range cfg.UDP {
		if err := ls.listenUDP(p, echoName); err != nil {
			return err
		}
	}
	if cfg.DNSPort != 0 {
		if err := ls.listenDNS(cfg.DNSPort, cfg.Domain); err != nil {
			return err
		}
	}
	if len(cfg.SCTP) > 0 {
		s, err := newSCTPResponder(cfg.Name, cfg.SCTP)
		if err != nil {
			return err
		}
		ls.closers = append(ls.closers, s)
		ls.run(func() { s.serve(ls.ctx, errs) })
	}
	return nil
}

// listenDNS answers DNS for domain on port, over UDP and TCP (resolvers
// retry over TCP when a UDP answer is truncated).
func (ls *listeners) listenDNS(port int, domain string) error {
	answerUDP := func(q []byte) []byte {
		resp, err := answerDNS(q, domain)
		if err != nil {
			return nil
		}
		return resp
	}
	if err := ls.listenUDP(port, answerUDP); err != nil {
		return err
	}
	return ls.listenTCP(port, func(c net.Conn) { serveDNSOverTCP(c, domain) })
}

// listenTCP serves each connection to port with handle, under a deadline so
// a silent client cannot hold a goroutine.
func (ls *listeners) listenTCP(port int, handle func(net.Conn)) error {
	l, err := ls.lc.Listen(ls.ctx, "tcp", net.JoinHostPort("", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("listen tcp %d: %w", port, err)
	}
	ls.closers = append(ls.closers, l)
	ls.run(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				handle(c)
			}()
		}
	})
	return nil
}

// listenUDP replies to each datagram on port with answer's reply, if any.
func (ls *listeners) listenUDP(port int, answer func([]byte) []byte) error {
	pc, err := ls.lc.ListenPacket(ls.ctx, "udp", net.JoinHostPort("", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("listen udp %d: %w", port, err)
	}
	ls.closers = append(ls.closers, pc)
	ls.run(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := answer(buf[:n]); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	})
	return nil
}
