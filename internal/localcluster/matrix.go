package localcluster

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-dev/palisade/internal/localcluster/probe"
	"github.com/palisade-dev/palisade/internal/netns"
)

// Port is a port and protocol a pod serves.
type Port struct {
	Port     int32
	Protocol corev1.Protocol
}

func (p Port) String() string { return fmt.Sprintf("%s/%d", p.Protocol, p.Port) }

// Cell is one probe of the matrix: from a pod to a pod on a port.
type Cell struct {
	From, To *Pod
	Port     Port
}

// Truth is a truth table: for every cell, whether the connection succeeded
// (or, for an expectation, should succeed).
type Truth map[cellKey]bool

type cellKey struct {
	from, to string
	port     Port
}

// Matrix is every pod to every pod on every port the target serves.
type Matrix struct {
	Pods []*Pod
	// Timeout bounds each probe (default 400ms; a connection between two
	// namespaces takes well under a millisecond). A probe that times out
	// spuriously only costs WaitFor another round, never a wrong verdict.
	Timeout time.Duration
	// Parallel is how many probes run at once.
	Parallel int
}

// ServedPorts lists the distinct ports a pod declares.
func (p *Pod) ServedPorts() []Port {
	var out []Port
	for _, cp := range p.Ports {
		proto := cp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		pp := Port{Port: cp.ContainerPort, Protocol: proto}
		if !slices.Contains(out, pp) {
			out = append(out, pp)
		}
	}
	slices.SortFunc(out, comparePorts)
	return out
}

func comparePorts(a, b Port) int {
	if a.Port != b.Port {
		return int(a.Port - b.Port)
	}
	return strings.Compare(string(a.Protocol), string(b.Protocol))
}

// Cells lists the matrix's probes.
func (m Matrix) Cells() []Cell {
	var cells []Cell
	for _, from := range m.Pods {
		for _, to := range m.Pods {
			for _, port := range to.ServedPorts() {
				cells = append(cells, Cell{From: from, To: to, Port: port})
			}
		}
	}
	return cells
}

// Expect builds the expected truth table from a rule. A pod reaching itself
// goes over its own loopback, which no node sees: it is always expected to
// succeed, as upstream's AllowLoopback has it.
func (m Matrix) Expect(allowed func(from, to *Pod, port Port) bool) Truth {
	t := Truth{}
	for _, c := range m.Cells() {
		t[cellKey{c.From.Key(), c.To.Key(), c.Port}] = c.From == c.To || allowed(c.From, c.To, c.Port)
	}
	return t
}

// Observe runs every probe of the matrix in parallel and returns what passed.
func (m Matrix) Observe(ctx context.Context) Truth {
	timeout := m.Timeout
	if timeout == 0 {
		timeout = 400 * time.Millisecond
	}
	parallel := m.Parallel
	if parallel == 0 {
		parallel = 512
	}
	cells := m.Cells()
	t := make(Truth, len(cells))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for _, c := range cells {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok := ctx.Err() == nil && ProbeOnce(c.From, c.To, c.Port, timeout) == nil
			mu.Lock()
			t[cellKey{c.From.Key(), c.To.Key(), c.Port}] = ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	return t
}

// ProbeOnce makes one connection from a pod's namespace to another pod and
// checks that the intended pod answered. DNS servers get a DNS query.
func ProbeOnce(from, to *Pod, port Port, timeout time.Duration) error {
	addr := netip.AddrPortFrom(to.IP, uint16(port.Port))
	return netns.Do(from.Netns, func() error {
		if to.DNS {
			_, err := probe.ProbeDNS(probe.Protocol(port.Protocol), addr, probe.PodRecord(from.IP, from.Namespace), timeout)
			return err
		}
		name, err := probe.Probe(probe.Protocol(port.Protocol), addr, timeout)
		if err != nil {
			return err
		}
		if name != to.Key() {
			return fmt.Errorf("%s answered instead of %s", name, to.Key())
		}
		return nil
	})
}

// Mismatches counts the cells where observed differs from expected.
func Mismatches(expected, observed Truth) int {
	n := 0
	for k, v := range expected {
		if observed[k] != v {
			n++
		}
	}
	return n
}

// Grid renders observed against expected, one table per port, rows are the
// callers, columns the targets: "." connected, "X" blocked, and a "!" after
// a cell that differs from the expectation. Ports without a difference are
// summarized on one line unless all is set.
func (m Matrix) Grid(expected, observed Truth, all bool) string {
	var b strings.Builder
	var ports []Port
	for _, p := range m.Pods {
		for _, pp := range p.ServedPorts() {
			if !slices.Contains(ports, pp) {
				ports = append(ports, pp)
			}
		}
	}
	slices.SortFunc(ports, comparePorts)
	w := 4
	for _, p := range m.Pods {
		w = max(w, len(p.Key())+1)
	}
	fmt.Fprintf(&b, "rows: from, columns: to; . = connected, X = blocked, ! = not as expected, - = port not served\n")
	for _, port := range ports {
		wrong := 0
		for k, v := range expected {
			if k.port == port && observed[k] != v {
				wrong++
			}
		}
		if wrong == 0 && !all {
			fmt.Fprintf(&b, "%s: as expected\n", port)
			continue
		}
		fmt.Fprintf(&b, "%s: %d unexpected\n%-*s", port, wrong, w, "")
		for _, to := range m.Pods {
			fmt.Fprintf(&b, "%-*s", w, to.Key())
		}
		b.WriteString("\n")
		for _, from := range m.Pods {
			fmt.Fprintf(&b, "%-*s", w, from.Key())
			for _, to := range m.Pods {
				k := cellKey{from.Key(), to.Key(), port}
				want, served := expected[k]
				cell := "-"
				if served {
					cell = "X"
					if observed[k] {
						cell = "."
					}
					if observed[k] != want {
						cell += "!"
					}
				}
				fmt.Fprintf(&b, "%-*s", w, cell)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// WaitFor polls the matrix until two consecutive observations equal the
// expectation (so a transient state is not taken for the enforced one), or
// fails after timeout with the last observation as a grid.
func (m Matrix) WaitFor(ctx context.Context, expected Truth, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	matched := 0
	var observed Truth
	for {
		observed = m.Observe(ctx)
		if Mismatches(expected, observed) == 0 {
			matched++
			if matched == 2 {
				return nil
			}
			continue
		}
		matched = 0
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("probe matrix not as expected after %s (%d of %d probes differ):\n%s",
		timeout, Mismatches(expected, observed), len(expected), m.Grid(expected, observed, false))
}
