package netnstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ProbeTimeout is how long a probe waits for an answer before it calls the
// destination unreachable. Inside one machine an allowed answer takes well
// under a millisecond; a dropped packet never answers.
const ProbeTimeout = 400 * time.Millisecond

// Probe is one connection attempt from a namespace to an address.
type Probe struct {
	From *NS
	// To is the destination's namespace; only SCTP probes need it.
	To       *NS
	Src, Dst netip.Addr
	Protocol corev1.Protocol
	Port     int
}

func (p Probe) String() string {
	return fmt.Sprintf("%s %s -> %s", p.Protocol, p.Src, net.JoinHostPort(p.Dst.String(), strconv.Itoa(p.Port)))
}

// Reach makes one real attempt and tells whether it got through:
//
//   - TCP: connect, send a line, read it back from the echo server: the
//     handshake's replies and the data must pass both ways.
//   - UDP: send a datagram and wait for its echo (a drop and a lost echo look
//     the same, so the echo is what counts).
//   - SCTP: send an INIT chunk from the source with a raw socket and watch for
//     it with a raw socket in the destination. The kernel may have no SCTP
//     stack at all (CONFIG_IP_SCTP off, as on the machines we test on) while
//     netfilter still tracks SCTP, so this is how the policy's decision on
//     an association's first packet is observed everywhere.
//
// A nil error with false means the attempt timed out, which is how a drop
// shows; an error means the probe itself could not run.
func Reach(p Probe) (bool, error) {
	switch p.Protocol {
	case corev1.ProtocolTCP:
		return reachTCP(p)
	case corev1.ProtocolUDP:
		return reachUDP(p)
	case corev1.ProtocolSCTP:
		return reachSCTP(p)
	}
	return false, fmt.Errorf("probe: unknown protocol %q", p.Protocol)
}

// ReachAll runs probes in parallel and returns their outcomes in order.
func ReachAll(probes []Probe) ([]bool, []error) {
	reached, errs := make([]bool, len(probes)), make([]error, len(probes))
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			reached[i], errs[i] = Reach(p)
		}()
	}
	wg.Wait()
	return reached, errs
}

func target(p Probe) string { return net.JoinHostPort(p.Dst.String(), strconv.Itoa(p.Port)) }

func reachTCP(p Probe) (bool, error) {
	var conn net.Conn
	err := p.From.Do(func() error {
		d := net.Dialer{Timeout: ProbeTimeout}
		var err error
		conn, err = d.Dial("tcp", target(p))
		return err
	})
	if err != nil {
		if isTimeout(err) {
			return false, nil
		}
		return false, err
	}
	defer conn.Close()
	return echo(conn)
}

func reachUDP(p Probe) (bool, error) {
	var conn net.Conn
	if err := p.From.Do(func() error {
		var err error
		conn, err = net.Dial("udp", target(p))
		return err
	}); err != nil {
		return false, err
	}
	defer conn.Close()
	return echo(conn)
}

// echo sends a random line and expects it back within ProbeTimeout.
func echo(conn net.Conn) (bool, error) {
	msg := []byte(fmt.Sprintf("probe %d\n", rand.Uint64()))
	_ = conn.SetDeadline(time.Now().Add(ProbeTimeout))
	if _, err := conn.Write(msg); err != nil {
		return false, fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		if isTimeout(err) {
			return false, nil
		}
		return false, fmt.Errorf("read echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return false, fmt.Errorf("echo %q, sent %q", got, msg)
	}
	return true, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// Stream is a long-lived TCP connection that keeps exchanging data: every
// few milliseconds it sends a line and reads the echo. Err reports the
// first failure (a broken connection, or no echo within a second).
type Stream struct {
	conn     net.Conn
	mu       sync.Mutex
	err      error
	rounds   int
	stop     chan struct{}
	finished chan struct{}
}

// OpenStream connects from `from` to dst:port (an echo server) and starts
// exchanging data.
func OpenStream(from *NS, dst netip.Addr, port int) (*Stream, error) {
	var conn net.Conn
	if err := from.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(dst.String(), strconv.Itoa(port)), time.Second)
		return err
	}); err != nil {
		return nil, err
	}
	s := &Stream{conn: conn, stop: make(chan struct{}), finished: make(chan struct{})}
	go s.loop()
	return s, nil
}

func (s *Stream) loop() {
	defer close(s.finished)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 64)
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		msg := []byte(fmt.Sprintf("round %d\n", s.Rounds()))
		_ = s.conn.SetDeadline(time.Now().Add(time.Second))
		_, err := s.conn.Write(msg)
		if err == nil {
			_, err = io.ReadFull(s.conn, buf[:len(msg)])
		}
		if err == nil && !bytes.Equal(buf[:len(msg)], msg) {
			err = fmt.Errorf("echo %q, sent %q", buf[:len(msg)], msg)
		}
		s.mu.Lock()
		if err != nil {
			s.err = err
			s.mu.Unlock()
			return
		}
		s.rounds++
		s.mu.Unlock()
	}
}

// Rounds is the number of successful exchanges so far.
func (s *Stream) Rounds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rounds
}

// Err is the failure that ended the exchange, if any.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops the exchange and closes the connection.
func (s *Stream) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.finished
	_ = s.conn.Close()
}

// WaitReachable probes until every probe gets through, for at most five
// seconds. Tests call it once after wiring, before any rule exists: the
// first neighbour resolution on brand-new links is occasionally lost and
// retried only after a second, which is the kernel settling, not a policy.
func WaitReachable(t testing.TB, probes []Probe) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, errs := ReachAll(probes)
		var failed []string
		for i, p := range probes {
			if errs[i] != nil || !got[i] {
				failed = append(failed, fmt.Sprintf("%s: %v", p, errs[i]))
			}
		}
		if len(failed) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the wiring does not carry traffic after 5s:\n%s", strings.Join(failed, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
