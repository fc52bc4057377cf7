package kerneltest

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// The node whose agent the tests run, and the node behind which remote
// peers live (its forward hook has no rules).
const (
	nodeA = "node-a"
	nodeB = "node-b"
)

// Ports every pod serves. Pods declare some of them as named container
// ports; the same name means different numbers on different pods.
var (
	tcpPorts  = []int{80, 81, 8080, 8081, 9000}
	udpPorts  = []int{53, 5353}
	namespace = map[string]map[string]string{
		"x": {"team": "x", "env": "prod"},
		"y": {"team": "y", "env": "dev"},
		"z": {"team": "z"},
	}
)

type podSpec struct {
	key    string // namespace/name
	node   string
	host   byte
	labels map[string]string
	ports  []policy.ContainerPort
}

func port(name string, proto corev1.Protocol, n int32) policy.ContainerPort {
	return policy.ContainerPort{Name: name, Protocol: proto, Port: n}
}

// pods are dual-stack. z/e's address lies in the except ranges of the
// ipBlock cases (10.100.1.64/26, fd00:100:0:1::40/122).
var pods = []podSpec{
	{"x/a", nodeA, 10, map[string]string{"app": "a"}, []policy.ContainerPort{
		port("http", corev1.ProtocolTCP, 80), port("dns", corev1.ProtocolUDP, 53), port("assoc", corev1.ProtocolSCTP, 90)}},
	{"x/b", nodeA, 11, map[string]string{"app": "b"}, []policy.ContainerPort{
		port("http", corev1.ProtocolTCP, 8080), port("dns", corev1.ProtocolUDP, 5353)}},
	{"x/c", nodeA, 12, map[string]string{"app": "c"}, nil},
	{"y/b", nodeA, 13, map[string]string{"app": "b"}, nil},
	{"y/d", nodeA, 14, map[string]string{"app": "d"}, nil},
	{"z/e", nodeA, 70, map[string]string{"app": "e"}, nil},
	{"y/r", nodeB, 10, map[string]string{"app": "r"}, nil},
}

// cluster is two connected nodes with the pods above, their servers
// running; "node" names node-a itself (it serves TCP 80 too).
type cluster struct {
	a, b *netnstest.Node
	pods map[string]*netnstest.Pod
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	testenv.RequireRoot(t)
	c := &cluster{a: netnstest.NewNode(t, nodeA, 1), b: netnstest.NewNode(t, nodeB, 2), pods: map[string]*netnstest.Pod{}}
	netnstest.Connect(t, c.a, c.b)
	for _, s := range pods {
		n := c.a
		if s.node == nodeB {
			n = c.b
		}
		p := n.AddPod(t, s.host, true)
		p.Serve(t, tcpPorts, udpPorts)
		c.pods[s.key] = p
	}
	c.a.Serve(t, []int{80}, nil)
	// Every pod reaches x/a and y/r, both ways, in both families, before
	// any rule exists.
	var warm []netnstest.Probe
	for _, s := range pods {
		for _, to := range []string{"x/a", "y/r"} {
			if s.key == to {
				continue
			}
			for _, v6 := range []bool{false, true} {
				warm = append(warm, c.netProbe(tcp(s.key, to, 80, yes).withV6(v6)), c.netProbe(tcp(to, s.key, 80, yes).withV6(v6)))
			}
		}
	}
	netnstest.WaitReachable(t, warm)
	return c
}

func (c *cluster) ns(name string) *netnstest.NS {
	if name == "node" {
		return c.a.NS
	}
	return c.pods[name].NS
}

func (c *cluster) addr(name string, v6 bool) netip.Addr {
	switch {
	case name == "node" && v6:
		return c.a.IP6
	case name == "node":
		return c.a.IP4
	case v6:
		return c.pods[name].IP6
	}
	return c.pods[name].IP4
}

// input is the policy model's view of the cluster with these policies.
func (c *cluster) input(policies []*networkingv1.NetworkPolicy) policy.Input {
	in := policy.Input{NodeName: nodeA, Policies: policies}
	for _, name := range slices.Sorted(maps.Keys(namespace)) {
		in.Namespaces = append(in.Namespaces, pt.Namespace(name, namespace[name]))
	}
	for _, s := range pods {
		ns, name, _ := strings.Cut(s.key, "/")
		p := c.pods[s.key]
		in.Pods = append(in.Pods, pt.WithPorts(pt.Pod(ns, name, s.node, s.labels, p.IP4.String(), p.IP6.String()), s.ports...))
	}
	return in
}

// apiObjects returns the cluster's Namespaces and Pods as API objects; the
// pods' status (IPs) must be written through the status subresource.
func (c *cluster) apiObjects() ([]*corev1.Namespace, []*corev1.Pod) {
	var nss []*corev1.Namespace
	for _, name := range slices.Sorted(maps.Keys(namespace)) {
		nss = append(nss, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: namespace[name]}})
	}
	var out []*corev1.Pod
	for _, s := range pods {
		ns, name, _ := strings.Cut(s.key, "/")
		var ports []corev1.ContainerPort
		for _, cp := range s.ports {
			ports = append(ports, corev1.ContainerPort{Name: cp.Name, Protocol: cp.Protocol, ContainerPort: cp.Port})
		}
		p := c.pods[s.key]
		out = append(out, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: s.labels},
			Spec:       corev1.PodSpec{NodeName: s.node, Containers: []corev1.Container{{Name: "c", Image: "none", Ports: ports}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.IP4.String(),
				PodIPs: []corev1.PodIP{{IP: p.IP4.String()}, {IP: p.IP6.String()}}},
		})
	}
	return nss, out
}

// probe is one expected outcome: a connection from one pod (or "node") to
// another on a port.
type probe struct {
	from, to string
	proto    corev1.Protocol
	port     int
	v6       bool
	want     bool
}

func tcp(from, to string, port int, want bool) probe {
	return probe{from, to, corev1.ProtocolTCP, port, false, want}
}

func udp(from, to string, port int, want bool) probe {
	return probe{from, to, corev1.ProtocolUDP, port, false, want}
}

func sctp(from, to string, port int, want bool) probe {
	return probe{from, to, corev1.ProtocolSCTP, port, false, want}
}

// six is the same probe over IPv6.
func (p probe) six() probe { p.v6 = true; return p }

func (p probe) withV6(v6 bool) probe { p.v6 = v6; return p }

func (p probe) String() string {
	fam := "v4"
	if p.v6 {
		fam = "v6"
	}
	verb := "denied"
	if p.want {
		verb = "allowed"
	}
	return fmt.Sprintf("%s %s %s -> %s:%d (want %s)", fam, p.proto, p.from, p.to, p.port, verb)
}

func (c *cluster) netProbe(p probe) netnstest.Probe {
	return netnstest.Probe{From: c.ns(p.from), To: c.ns(p.to), Src: c.addr(p.from, p.v6), Dst: c.addr(p.to, p.v6), Protocol: p.proto, Port: p.port}
}

// mismatches runs the probes in parallel and describes every one whose
// outcome differs from its expectation.
func (c *cluster) mismatches(probes []probe) []string {
	np := make([]netnstest.Probe, len(probes))
	for i, p := range probes {
		np[i] = c.netProbe(p)
	}
	got, errs := netnstest.ReachAll(np)
	var out []string
	for i, p := range probes {
		switch {
		case errs[i] != nil:
			out = append(out, fmt.Sprintf("%s: probe failed: %v", p, errs[i]))
		case got[i] != p.want:
			out = append(out, fmt.Sprintf("%s: reached=%v", p, got[i]))
		}
	}
	return out
}

// forget makes every probe of a case start from scratch: node-a forgets its
// connections (an earlier case's probe may have used the same addresses
// and ports, and UDP entries live 30 s and more), and node-a and its pods
// forget their neighbours, so that the case must also let neighbour
// discovery through (it crosses the input hook, and conntrack calls it
// invalid).
func (c *cluster) forget(t *testing.T) {
	t.Helper()
	c.a.Run(t, "conntrack", "-F")
	for _, ns := range append([]*netnstest.NS{c.a.NS}, c.podNS(nodeA)...) {
		ns.Run(t, "ip", "-6", "neigh", "flush", "all")
	}
}

func (c *cluster) podNS(node string) []*netnstest.NS {
	var out []*netnstest.NS
	for _, s := range pods {
		if s.node == node {
			out = append(out, c.pods[s.key].NS)
		}
	}
	return out
}

// kernelBackend is a backend under test, programming one namespace.
type kernelBackend interface {
	dataplane.Backend
	dataplane.ColdStarter
}

// backendKind is a dataplane backend under test.
type backendKind struct {
	name string
	// owns marks what the backend owns in `nft list ruleset` and
	// iptables-save output (see netnstest.Without).
	owns string
	// new returns a fresh backend programming ns, as a newly started agent
	// would have, rendering with opts.
	new func(t testing.TB, ns *netnstest.NS, opts ...render.Option) kernelBackend
}

var backends = []backendKind{
	{"nftables", "table inet " + render.TableName + " {", func(_ testing.TB, ns *netnstest.NS, opts ...render.Option) kernelBackend {
		return nft.New(nft.WithNetNSFd(ns.Fd), nft.WithRenderOptions(opts...))
	}},
	{"iptables", iptables.ChainPrefix, func(t testing.TB, ns *netnstest.NS, opts ...render.Option) kernelBackend {
		b, err := iptables.New(iptables.WithRenderOptions(opts...))
		if err != nil {
			t.Fatalf("iptables backend: %v", err)
		}
		// The backend has no namespace option: it runs iptables-restore,
		// which inherits the namespace of the thread that starts it.
		return inNetns{ns: ns, b: b}
	}},
}

// inNetns runs the iptables backend's calls on a thread inside a namespace.
type inNetns struct {
	ns *netnstest.NS
	b  *iptables.Backend
}

func (w inNetns) Sync(ctx context.Context, st *policy.State) (dataplane.Stats, error) {
	var stats dataplane.Stats
	err := w.ns.Do(func() error {
		var err error
		stats, err = w.b.Sync(ctx, st)
		return err
	})
	return stats, err
}

func (w inNetns) Uninstall(ctx context.Context) error {
	return w.ns.Do(func() error { return w.b.Uninstall(ctx) })
}

func (w inNetns) Installed(ctx context.Context) (bool, error) {
	var ok bool
	err := w.ns.Do(func() error {
		var err error
		ok, err = w.b.Installed(ctx)
		return err
	})
	return ok, err
}

func (w inNetns) ColdStart(ctx context.Context) error {
	return w.ns.Do(func() error { return w.b.ColdStart(ctx) })
}

// syncPolicies computes node-a's state for the policies and programs it.
func syncPolicies(t *testing.T, c *cluster, b dataplane.Backend, policies []*networkingv1.NetworkPolicy) policy.Input {
	t.Helper()
	in := c.input(policies)
	st := policy.Compute(in)
	if len(st.Errors) > 0 {
		t.Fatalf("policies of the case are malformed: %v", st.Errors)
	}
	if _, err := b.Sync(context.Background(), &st); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return in
}
