package iptables_test

// A small kernel-test harness: a node namespace with routed pod namespaces
// behind it (the way Calico or the ptp CNI wire pods), listeners in every
// pod, and probes from inside the namespaces. Names start with "pit-" and
// addresses lie in 10.101.0.0/16 and fd00:101::/48. dataplane/internal/netnstest
// has the namespace part with another prefix; the two can merge once it takes
// a prefix and grows pods.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/policy"
	"github.com/palisade-dev/palisade/e2e/framework/probe"
	"github.com/palisade-dev/palisade/internal/testenv"
)

var nsSeq atomic.Int64

// namespace is a named network namespace.
type namespace struct {
	name   string
	handle netns.NsHandle
}

func newNamespace(t *testing.T, short string) *namespace {
	t.Helper()
	name := fmt.Sprintf("pit-%s-%d-%d", short, os.Getpid()%100000, nsSeq.Add(1))
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ns := &namespace{name: name, handle: h}
	ns.run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// run runs a command in the namespace and fails the test on error.
func (ns *namespace) run(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, append([]string{"ip", "netns", "exec", ns.name}, args...)...)
}

// do runs fn on an OS thread that lives in the namespace; sockets and child
// processes fn creates belong to the namespace. The thread is discarded
// afterwards (the goroutine exits locked).
func (ns *namespace) do(fn func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		if err := netns.Set(ns.handle); err != nil {
			panic(fmt.Sprintf("setns %s: %v", ns.name, err))
		}
		fn()
	}()
	wg.Wait()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Ports every test listener serves.
var (
	tcpPorts  = []int{80, 81, 8080}
	udpPorts  = []int{80, 81}
	sctpPorts = []int{80, 81}
)

// testNode is a node namespace with hosts (pods or outside machines)
// routed behind it.
type testNode struct {
	t      *testing.T
	ns     *namespace
	v4, v6 netip.Addr
	hosts  map[string]*host
	n      int
}

type host struct {
	name   string
	ns     *namespace
	v4, v6 netip.Addr
}

// newTestNode creates the node namespace, with its own addresses
// 10.101.0.1 and fd00:101::ff on lo and a listener on them.
func newTestNode(t *testing.T) *testNode {
	testenv.RequireRoot(t)
	for _, bin := range []string{"iptables-restore", "ip6tables-restore", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is needed (Debian package iptables or nftables): %v", bin, err)
		}
	}
	n := &testNode{t: t, ns: newNamespace(t, "node"), hosts: map[string]*host{},
		v4: netip.MustParseAddr("10.101.0.1"), v6: netip.MustParseAddr("fd00:101::ff")}
	n.ns.run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	n.ns.run(t, "ip", "addr", "add", "10.101.0.1/32", "dev", "lo")
	n.ns.run(t, "ip", "addr", "add", "fd00:101::ff/128", "dev", "lo", "nodad")
	// proxy_arp answers for 169.254.1.1 only when the node has a route to
	// it through another interface: a default route through an uplink
	// (a veth pair whose far end stays in the node; nothing leaves it).
	n.ns.run(t, "ip", "link", "add", "pitup", "type", "veth", "peer", "name", "pitup2")
	n.ns.run(t, "ip", "link", "set", "pitup2", "up")
	n.ns.run(t, "ip", "link", "set", "pitup", "up")
	n.ns.run(t, "ip", "route", "add", "default", "dev", "pitup")
	n.serve(n.ns, "node")
	return n
}

// addHost wires a namespace behind the node: the host side has a /32 and
// /128 with default routes via 169.254.1.1 and fe80::1, the node side
// answers ARP for them (proxy_arp) and routes the host's addresses to it.
func (n *testNode) addHost(name, v4, v6 string) *host {
	t := n.t
	n.n++
	h := &host{name: name, ns: newNamespace(t, "h"), v4: netip.MustParseAddr(v4), v6: netip.MustParseAddr(v6)}
	veth := fmt.Sprintf("pit%d", n.n)
	n.ns.run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns.name)
	// proxy_delay=0: proxy ARP answers are otherwise delayed by up to
	// 0.8 s (Calico sets it to 0 for the same reason).
	n.ns.run(t, "sysctl", "-qw", "net.ipv4.conf."+veth+".proxy_arp=1", "net.ipv4.neigh."+veth+".proxy_delay=0")
	n.ns.run(t, "ip", "link", "set", veth, "up")
	n.ns.run(t, "ip", "addr", "add", "fe80::1/64", "dev", veth, "nodad")
	n.ns.run(t, "ip", "route", "add", v4+"/32", "dev", veth)
	n.ns.run(t, "ip", "-6", "route", "add", v6+"/128", "dev", veth)
	h.ns.run(t, "ip", "link", "set", "eth0", "up")
	h.ns.run(t, "ip", "addr", "add", v4+"/32", "dev", "eth0")
	h.ns.run(t, "ip", "addr", "add", v6+"/128", "dev", "eth0", "nodad")
	h.ns.run(t, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
	h.ns.run(t, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
	h.ns.run(t, "ip", "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0")
	n.serve(h.ns, name)
	n.hosts[name] = h
	return h
}

// flushNeighbours empties the neighbour caches of the node and every host.
func (n *testNode) flushNeighbours() {
	n.ns.run(n.t, "ip", "neigh", "flush", "all")
	for _, h := range n.hosts {
		h.ns.run(n.t, "ip", "neigh", "flush", "all")
	}
}

// serve runs the probe server in ns until the test ends.
func (n *testNode) serve(ns *namespace, name string) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go ns.do(func() {
		done <- probe.Serve(ctx, probe.ServerConfig{Name: name, TCP: tcpPorts, UDP: udpPorts, SCTP: sctpPorts}, func() { close(ready) })
	})
	n.t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-done:
		n.t.Fatalf("serve in %s: %v", ns.name, err)
	case <-time.After(10 * time.Second):
		n.t.Fatalf("serve in %s: not ready", ns.name)
	}
}

// sync programs st in the node namespace with b.
func (n *testNode) sync(b *iptables.Backend, st *policy.State) {
	n.t.Helper()
	var err error
	n.ns.do(func() { _, err = b.Sync(context.Background(), st) })
	if err != nil {
		n.t.Fatalf("sync: %v", err)
	}
}

func (n *testNode) uninstall(b *iptables.Backend) {
	n.t.Helper()
	var err error
	n.ns.do(func() { err = b.Uninstall(context.Background()) })
	if err != nil {
		n.t.Fatalf("uninstall: %v", err)
	}
}

// probeTimeout bounds one connection attempt; routes are local, so an
// answer takes microseconds.
const probeTimeout = 400 * time.Millisecond

// connects probes dst from src ("node" for the node itself) and tells
// whether the connection completed and landed on dst.
func (n *testNode) connects(src, dst string, proto probe.Protocol, port uint16, v6 bool) bool {
	n.t.Helper()
	from := n.ns
	if src != "node" {
		from = n.hosts[src].ns
	}
	addr := n.v4
	if dst != "node" {
		addr = n.hosts[dst].v4
	}
	if v6 {
		addr = n.v6
		if dst != "node" {
			addr = n.hosts[dst].v6
		}
	}
	var got string
	var err error
	from.do(func() { got, err = probe.Probe(proto, netip.AddrPortFrom(addr, port), probeTimeout) })
	if err == nil && got != dst {
		n.t.Errorf("probe %s → %s landed on %q", src, dst, got)
		return false
	}
	return err == nil
}

// check is one expected probe result.
type check struct {
	src, dst string
	proto    probe.Protocol
	port     uint16
	v6       bool
	want     bool
}

func (c check) String() string {
	fam := "v4"
	if c.v6 {
		fam = "v6"
	}
	verdict := "denied"
	if c.want {
		verdict = "allowed"
	}
	return fmt.Sprintf("%s → %s %s/%d %s should be %s", c.src, c.dst, c.proto, c.port, fam, verdict)
}

// expect runs the checks in parallel. An allowed probe that fails gets one
// more try (a neighbour entry may still be resolving); a denied one has to
// fail once only, so every scenario first shows its pairs connect without
// policy.
func (n *testNode) expect(label string, checks []check) {
	n.t.Helper()
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := n.connects(c.src, c.dst, c.proto, c.port, c.v6)
			if !got && c.want {
				got = n.connects(c.src, c.dst, c.proto, c.port, c.v6)
			}
			if got != c.want {
				n.t.Errorf("%s: %s", label, c)
			}
		}()
	}
	wg.Wait()
}

var (
	saveComment = regexp.MustCompile(`(?m)^#.*\n`)
	saveCounter = regexp.MustCompile(`\[\d+:\d+\]`)
)

// save returns iptables-save (or ip6tables-save) of every table, without
// its timestamps and counters.
func (n *testNode) save(fam iptables.Family) string {
	n.t.Helper()
	bin := "iptables-save"
	if fam == iptables.IPv6 {
		bin = "ip6tables-save"
	}
	out := n.ns.run(n.t, bin)
	return saveCounter.ReplaceAllString(saveComment.ReplaceAllString(out, ""), "[0:0]")
}

// foreign returns save without anything of ours.
func (n *testNode) foreign(fam iptables.Family) string {
	var keep []string
	for _, l := range strings.Split(n.save(fam), "\n") {
		if !strings.Contains(l, iptables.ChainPrefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// ours returns the lines of save that mention our chains, sorted by chain
// the way iptables-save prints them.
func (n *testNode) ours(fam iptables.Family) string {
	var keep []string
	for _, l := range strings.Split(n.save(fam), "\n") {
		if strings.Contains(l, iptables.ChainPrefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
