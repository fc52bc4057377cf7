package kerneltest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// coldStartBackend is a backend under test and how to read what it owns
// in a namespace, as text.
type coldStartBackend struct {
	backendKind
	owned func(t *testing.T, ns *netnstest.NS) string
}

var coldStartBackends = []coldStartBackend{
	{backends[0], func(t *testing.T, ns *netnstest.NS) string {
		out, err := ns.Try("nft", "list", "table", "inet", render.TableName)
		if err != nil {
			return ""
		}
		return out
	}},
	{backends[1], func(t *testing.T, ns *netnstest.NS) string {
		return netnstest.Owned(ns.IptablesSave(t, false), iptables.ChainPrefix) + "\n" +
			netnstest.Owned(ns.IptablesSave(t, true), iptables.ChainPrefix)
	}},
}

// TestColdStartKernel: on a bare node (no rule of ours), the cold start
// drops every new forwarded connection between pods, in both families and
// both directions, while a connection opened before keeps flowing and the
// node's own services stay reachable from pods. The first full sync then
// opens what the state allows, closes what it denies, and leaves exactly
// what a sync on a bare node leaves: nothing of the cold start remains.
func TestColdStartKernel(t *testing.T) {
	testenv.RequireRoot(t)
	for _, bk := range coldStartBackends {
		t.Run(bk.name, func(t *testing.T) {
			ctx := context.Background()
			node := netnstest.NewNodePrefixed(t, "pcs", nodeA, 1)
			pods := map[string]*netnstest.Pod{}
			var apiPods []policy.Pod
			for i, name := range []string{"a", "b", "c"} {
				p := node.AddPod(t, byte(10+i), true)
				p.Serve(t, []int{80}, []int{53})
				pods[name] = p
				apiPods = append(apiPods, pt.Pod("x", name, nodeA, map[string]string{"app": name}, p.IP4.String(), p.IP6.String()))
			}
			node.Serve(t, []int{80}, nil)
			probe := func(from, to string, v6 bool, proto corev1.Protocol, port int) netnstest.Probe {
				src, dst := pods[from], pods[to]
				p := netnstest.Probe{From: src.NS, To: dst.NS, Src: src.IP4, Dst: dst.IP4, Protocol: proto, Port: port}
				if v6 {
					p.Src, p.Dst = src.IP6, dst.IP6
				}
				return p
			}
			toNode := func(from string, v6 bool) netnstest.Probe {
				p := netnstest.Probe{From: pods[from].NS, To: node.NS, Src: pods[from].IP4, Dst: node.IP4, Protocol: corev1.ProtocolTCP, Port: 80}
				if v6 {
					p.Src, p.Dst = pods[from].IP6, node.IP6
				}
				return p
			}
			var forwarded, input []netnstest.Probe
			for _, v6 := range []bool{false, true} {
				forwarded = append(forwarded,
					probe("b", "a", v6, corev1.ProtocolTCP, 80), probe("a", "b", v6, corev1.ProtocolTCP, 80),
					probe("c", "a", v6, corev1.ProtocolTCP, 80), probe("b", "a", v6, corev1.ProtocolUDP, 53))
				input = append(input, toNode("a", v6), toNode("c", v6))
			}
			netnstest.WaitReachable(t, append(append([]netnstest.Probe(nil), forwarded...), input...))

			// Conntrack tracks a namespace's connections only once a rule
			// there needs it; on a real node kube-proxy's and the CNI's rules
			// do long before our agent starts. Without it the stream below
			// would have no entry, and its next segment would be picked up
			// mid-stream as a new connection, which the cold start drops.
			trackConnections(t, node.NS)
			stream, err := netnstest.OpenStream(pods["b"].NS, pods["a"].IP4, 80)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stream.Close)
			waitFor(t, 5*time.Second, "the stream's first exchanges", func() bool { return stream.Rounds() > 0 || stream.Err() != nil })

			b := bk.new(t, node.NS)
			if ok, err := b.Installed(ctx); err != nil || ok {
				t.Fatalf("bare node: Installed = %v, %v", ok, err)
			}
			if err := b.ColdStart(ctx); err != nil {
				t.Fatalf("cold start: %v", err)
			}
			if ok, err := b.Installed(ctx); err != nil || !ok {
				t.Fatalf("after the cold start: Installed = %v, %v", ok, err)
			}
			// Every probe is a new connection (a new source port), so
			// the warm-up's conntrack entries do not let it through as
			// established.
			rounds := stream.Rounds()
			reached, errs := netnstest.ReachAll(forwarded)
			for i, p := range forwarded {
				if errs[i] != nil {
					t.Errorf("probe %s: %v", p, errs[i])
				} else if reached[i] {
					t.Errorf("cold start: new forwarded connection %s got through", p)
				}
			}
			reached, errs = netnstest.ReachAll(input)
			for i, p := range input {
				if errs[i] != nil || !reached[i] {
					t.Errorf("cold start: the node's own service is unreachable: %s (%v)", p, errs[i])
				}
			}
			if err := stream.Err(); err != nil || stream.Rounds() <= rounds {
				t.Errorf("the connection opened before the cold start stopped: %v (%d rounds before, %d after)", err, rounds, stream.Rounds())
			}
			if again := b.ColdStart(ctx); again == nil {
				t.Error("a second cold start over rules of ours succeeded: it must refuse")
			}

			// The first full sync: x/a accepts TCP 80 from x/b only.
			in := policy.Input{NodeName: nodeA, Namespaces: []policy.Namespace{pt.Namespace("x", nil)}, Pods: apiPods,
				Policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "web", pt.Selecting(map[string]string{"app": "a"}),
					pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"})), pt.TCP(80)))}}
			st := policy.Compute(in)
			if len(st.Errors) > 0 {
				t.Fatal(st.Errors)
			}
			if _, err := b.Sync(ctx, &st); err != nil {
				t.Fatalf("first sync after the cold start: %v", err)
			}
			for _, v6 := range []bool{false, true} {
				for _, c := range []struct {
					p    netnstest.Probe
					want bool
				}{
					{probe("b", "a", v6, corev1.ProtocolTCP, 80), true},
					{probe("a", "b", v6, corev1.ProtocolTCP, 80), true},
					{probe("c", "a", v6, corev1.ProtocolTCP, 80), false},
					{probe("b", "a", v6, corev1.ProtocolUDP, 53), false},
					{toNode("c", v6), true},
				} {
					got, err := netnstest.Reach(c.p)
					if err != nil || got != c.want {
						t.Errorf("after the first sync: %s reached %v (%v), want %v", c.p, got, err, c.want)
					}
				}
			}
			if err := stream.Err(); err != nil {
				t.Errorf("the connection opened before the cold start broke at the first sync: %v", err)
			}

			// Nothing of the cold start remains: the node holds what a
			// first sync on a bare node would leave.
			ref := netnstest.NewPrefixed(t, "pcs", "ref")
			if _, err := bk.new(t, ref).Sync(ctx, &st); err != nil {
				t.Fatal(err)
			}
			got, want := bk.owned(t, node.NS), bk.owned(t, ref)
			if !strings.Contains(got, "PALISADE-FORWARD") && !strings.Contains(got, "chain egress") {
				t.Fatalf("no rules of ours after the first sync:\n%s", got)
			}
			if got != want {
				t.Errorf("after the first sync the node holds\n%s\nbut a first sync on a bare node leaves\n%s", got, want)
			}
			if strings.Contains(got, render.ColdStartChain) || strings.Contains(got, "cold start") {
				t.Errorf("the cold start survived the first sync:\n%s", got)
			}
			if err := b.Uninstall(ctx); err != nil {
				t.Fatal(err)
			}
			if left := bk.owned(t, node.NS); strings.TrimSpace(left) != "" {
				t.Errorf("uninstall left:\n%s", left)
			}
		})
	}
}

// trackConnections adds a table of another program's (as kube-proxy's)
// whose rule makes the kernel track the namespace's connections.
func trackConnections(t *testing.T, ns *netnstest.NS) {
	t.Helper()
	ns.Run(t, "nft", "add table inet pcs-other\n"+
		"add chain inet pcs-other forward { type filter hook forward priority 100; policy accept; }\n"+
		"add rule inet pcs-other forward ct state new counter")
}

// TestAgentBinaryColdStart runs the agent binary on a new node whose API
// server is unreachable (nothing listens at its address): with the default
// --cold-start=deny it programs the cold start before it can reach the
// server, and says so in its log; on a node with rules of ours it keeps
// them byte for byte; with --cold-start=allow it programs nothing.
func TestAgentBinaryColdStart(t *testing.T) {
	testenv.RequireRoot(t)
	bin, err := buildAgent(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	nftTable := func(ns *netnstest.NS) string {
		out, err := ns.Try("nft", "list", "table", "inet", render.TableName)
		if err != nil {
			return ""
		}
		return out
	}
	// run starts the agent in ns, waits until its log has line, and stops
	// it; it returns the log.
	run := func(t *testing.T, ns *netnstest.NS, line string, args ...string) string {
		t.Helper()
		kc := filepath.Join(t.TempDir(), "kubeconfig")
		// Port 1 of the namespace's loopback: connection refused.
		if err := os.WriteFile(kc, []byte(unreachableKubeconfig), 0o600); err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, bin,
			"--kubeconfig=" + kc, "--node-name=" + nodeA, "--metrics-bind-address=0",
			"--health-probe-bind-address=127.0.0.1:0", "--hubble-bind-address=0",
			"--state-file=" + filepath.Join(t.TempDir(), "agent-state.json")}, args...)...)
		cmd.Stdout, cmd.Stderr = &syncWriter{w: &log}, &syncWriter{w: &log}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			out := syncString(&log)
			if strings.Contains(out, line) {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the agent's log after 10s:\n%s", line, out)
			}
		}
	}

	// Nothing answers at the API server's address: whatever the agent
	// programs, it programs without the server.
	bare := netnstest.NewPrefixed(t, "pcs", "bin")
	logged := run(t, bare, "cold-start deny until the first sync")
	if got := nftTable(bare); !strings.Contains(got, "chain "+render.ColdStartChain) {
		t.Errorf("after the agent's start the node holds\n%s\nwant the cold-start table\n%s", got, logged)
	}
	// The next agent (a restart) keeps what the first left.
	before := nftTable(bare)
	run(t, bare, "keeping them until the first sync")
	if after := nftTable(bare); after != before {
		t.Errorf("a restarted agent changed the table:\n%s\nwas\n%s", after, before)
	}

	open := netnstest.NewPrefixed(t, "pcs", "bin-allow")
	run(t, open, "not isolated until the first sync", "--cold-start=allow")
	if got := nftTable(open); got != "" {
		t.Errorf("--cold-start=allow programmed\n%s", got)
	}
}

const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: none
  cluster:
    server: http://127.0.0.1:1
users:
- name: none
  user: {}
contexts:
- name: none
  context: {cluster: none, user: none}
current-context: none
`

// syncWriter serializes the agent's two output streams into one buffer.
type syncWriter struct{ w *bytes.Buffer }

var logMu sync.Mutex

func (s *syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return s.w.Write(p)
}

func syncString(b *bytes.Buffer) string {
	logMu.Lock()
	defer logMu.Unlock()
	return b.String()
}
