//go:build e2e && realnodes

package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/internal/localcluster"
	"github.com/palisade-dev/palisade/internal/localcluster/probe"
	"github.com/palisade-dev/palisade/internal/netns"
)

// The reliability pods, namespace rr: a podserver on each node, and on each
// node a client the policy admits and one it does not. The clients run
// pause: the prober dials from their network namespaces.
const reliabilityPods = `{{range .}}---
apiVersion: v1
kind: Pod
metadata:
  name: {{.Name}}
  namespace: rr
  labels: {role: {{.Role}}}
spec:
  nodeSelector: {kubernetes.io/hostname: {{.Node}}}
  terminationGracePeriodSeconds: 1
  containers:
{{- if eq .Role "server"}}
  - name: podserver
    image: ` + localcluster.PodserverImage + `
    imagePullPolicy: IfNotPresent
    args: ["serve", "--name", "rr/{{.Name}}", "--tcp", "80,81", "--udp", "80"]
    readinessProbe:
      tcpSocket: {port: 80}
      periodSeconds: 1
{{- else}}
  - name: pause
    image: ` + localcluster.PauseImage + `
    imagePullPolicy: IfNotPresent
{{- end}}
{{end}}`

// reliabilityPolicy admits role=client-allowed to the servers on TCP and
// UDP 80, and nothing else (81 is denied to everyone). A new object each
// time: creating one fills in its resourceVersion.
func reliabilityPolicy() *networkingv1.NetworkPolicy {
	return netpol("rr", "servers-from-allowed-clients", labels("role", "server"), ingressOnly,
		[]networkingv1.NetworkPolicyIngressRule{in(ports(port(corev1.ProtocolTCP, 80), port(corev1.ProtocolUDP, 80)),
			peerPod(sel("role", "client-allowed")))}, nil)
}

type rrPod struct{ Name, Role, Node string }

var reliabilityPodList = []rrPod{
	{"server-1", "server", "node-1"}, {"server-2", "server", "node-2"},
	{"allowed-1", "client-allowed", "node-1"}, {"allowed-2", "client-allowed", "node-2"},
	{"denied-1", "client-denied", "node-1"}, {"denied-2", "client-denied", "node-2"},
}

// rrPair is a probe pair: node-local and cross-node, both directions.
type rrPair struct {
	From, To string
	Proto    probe.Protocol
	Port     uint16
	Allowed  bool
}

var reliabilityPairs = []rrPair{
	{"allowed-1", "server-1", probe.TCP, 80, true},
	{"allowed-1", "server-2", probe.TCP, 80, true},
	{"allowed-2", "server-1", probe.TCP, 80, true},
	{"allowed-2", "server-2", probe.TCP, 80, true},
	{"allowed-1", "server-2", probe.UDP, 80, true},
	{"allowed-2", "server-2", probe.UDP, 80, true},
	{"denied-1", "server-1", probe.TCP, 80, false},
	{"denied-1", "server-2", probe.TCP, 80, false},
	{"denied-2", "server-1", probe.TCP, 80, false},
	{"denied-2", "server-2", probe.TCP, 80, false},
	{"denied-2", "server-1", probe.UDP, 80, false},
	{"allowed-1", "server-1", probe.TCP, 81, false},
	{"allowed-2", "server-1", probe.TCP, 81, false},
}

const (
	// probeInterval is how often each pair opens a new connection.
	probeInterval = 100 * time.Millisecond
	// probeTimeout: a denied probe takes this long; an allowed one that
	// takes longer counts as failed. Generous because the machine's two
	// cores are shared with the nodes' kubelets and containerds.
	probeTimeout = time.Second
	// trafficAfterRecovery is how long traffic keeps flowing once the agent
	// is ready again, so that its first syncs after the restart are covered.
	trafficAfterRecovery = 10 * time.Second
	// maxAllowedFailureRatio is the allowed failures a scenario tolerates.
	maxAllowedFailureRatio = 0.01
)

// rrEnv is one backend's cluster with the reliability pods.
type rrEnv struct {
	backend string
	c       *localcluster.Cluster
	pods    map[string]*corev1.Pod
	netns   map[string]*netns.NS // client pod -> its network namespace
}

// TestReliabilityRealNodes runs the fault scenarios that matter most on
// real nodes, per backend, with traffic flowing between real containers:
// kill -9 of an agent container, a rolling update of the agent DaemonSet,
// and a node whose agent is not ready.
func TestReliabilityRealNodes(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testReliabilityRealNodes(t, backend) })
	}
}

func testReliabilityRealNodes(t *testing.T, backend string) {
	e := &rrEnv{
		backend: backend,
		c:       upRealNodes(t, "reliability-realnodes-"+backend, backend),
		netns:   map[string]*netns.NS{},
	}
	createRealNamespace(t, e.c, "rr")
	applyTemplate(t, e.c, reliabilityPods, reliabilityPodList)
	e.pods = waitRRPodsReady(t, e.c, reliabilityPodList)
	for _, p := range reliabilityPodList {
		if p.Role != "server" {
			e.netns[p.Name] = e.openPodNetns(t, p.Name)
		}
	}
	if err := localcluster.ApplyObject(context.Background(), e.c.Client, reliabilityPolicy()); err != nil {
		t.Fatal(err)
	}
	if err := waitForCond(60*time.Second, "the policy to give every pair its verdict", e.wrongPairs); err != nil {
		t.Fatal(err)
	}
	t.Run("agent-kill-9", e.testAgentKill)
	t.Run("daemonset-rolling-update", e.testRollingUpdate)
	t.Run("agent-not-ready-node", e.testAgentNotReadyNode)
}

// waitRRPodsReady waits until the pods are Ready on their nodes and returns
// them by name.
func waitRRPodsReady(t *testing.T, c *localcluster.Cluster, want []rrPod) map[string]*corev1.Pod {
	t.Helper()
	ctx := context.Background()
	got := map[string]*corev1.Pod{}
	if err := waitForCond(2*time.Minute, "the rr pods to be ready", func() error {
		for _, p := range want {
			pod, err := c.Clientset.CoreV1().Pods("rr").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !podReady(pod) {
				return fmt.Errorf("pod %s not ready (%s)", p.Name, pod.Status.Phase)
			}
			if pod.Spec.NodeName != p.Node {
				return fmt.Errorf("pod %s on %s, want %s", p.Name, pod.Spec.NodeName, p.Node)
			}
			got[p.Name] = pod
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// openPodNetns opens the network namespace of a pod's container through
// its process (/proc/<pid>/ns/net), found in its node's containerd; the
// handle stays valid as long as the test holds it.
func (e *rrEnv) openPodNetns(t *testing.T, name string) *netns.NS {
	t.Helper()
	pod := e.pods[name]
	pid, err := e.c.ContainerPID(context.Background(), pod.Spec.NodeName, pod.Status.ContainerStatuses[0])
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.OpenPath(filepath.Join("/proc", fmt.Sprint(pid), "ns", "net"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	return ns
}

// connects opens one new connection from a client pod to one of the
// servers of reliabilityPodList and tells whether the server answered with its own name.
func (e *rrEnv) connects(from, to string, proto probe.Protocol, port uint16) bool {
	return e.connectsTo(from, e.pods[to], proto, port)
}

// connectsTo is connects to any server pod.
func (e *rrEnv) connectsTo(from string, to *corev1.Pod, proto probe.Protocol, port uint16) bool {
	addr := netip.AddrPortFrom(netip.MustParseAddr(to.Status.PodIP), port)
	var name string
	err := e.netns[from].Do(func() error {
		var err error
		name, err = probe.Probe(proto, addr, probeTimeout)
		return err
	})
	return err == nil && name == to.Namespace+"/"+to.Name
}

func (p rrPair) String() string {
	return fmt.Sprintf("%s -> %s %s/%d", p.From, p.To, p.Proto, p.Port)
}

// wrongPairs probes every pair once and names those whose outcome
// contradicts their verdict.
func (e *rrEnv) wrongPairs() error {
	var wrong []string
	for _, p := range reliabilityPairs {
		if e.connects(p.From, p.To, p.Proto, p.Port) != p.Allowed {
			wrong = append(wrong, fmt.Sprintf("%s: connected=%v", p, !p.Allowed))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%s", strings.Join(wrong, "; "))
	}
	return nil
}

// startTraffic starts the prober on every pair and waits until each pair
// has been probed at least once, so that the fault hits flowing traffic.
// The prober stops when the test ends, if finishTraffic has not stopped it.
func (e *rrEnv) startTraffic(t *testing.T) *localcluster.Prober {
	t.Helper()
	pairs := make([]localcluster.ProbePair, 0, len(reliabilityPairs))
	for _, p := range reliabilityPairs {
		pairs = append(pairs, localcluster.ProbePair{
			Name: p.String(), Allowed: p.Allowed,
			Probe: func() bool { return e.connects(p.From, p.To, p.Proto, p.Port) },
		})
	}
	pr := localcluster.StartProber(pairs, probeInterval)
	t.Cleanup(func() { pr.Finish() })
	if err := waitForCond(30*time.Second, "traffic on every pair", func() error {
		if n := pr.Probes(); n < int64(2*len(pairs)) {
			return fmt.Errorf("%d probes so far", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return pr
}

// finishTraffic keeps traffic flowing for trafficAfterRecovery, stops the
// prober and asserts no forbidden success and at most 1% allowed failures.
func (e *rrEnv) finishTraffic(t *testing.T, figures map[string]any, pr *localcluster.Prober) {
	t.Helper()
	time.Sleep(trafficAfterRecovery)
	counts := pr.Finish()
	maps.Copy(figures, counts.Figures())
	t.Logf("%s %s: %s", e.backend, t.Name(), formatFigures(figures))
	if len(counts.Wrong) > 0 {
		t.Logf("pairs with wrong outcomes: %s", strings.Join(counts.WrongPairs(), ", "))
	}
	if counts.ForbiddenSuccesses != 0 {
		t.Errorf("%d forbidden successes, want 0", counts.ForbiddenSuccesses)
	}
	if r := counts.AllowedFailureRatio(); r > maxAllowedFailureRatio {
		t.Errorf("allowed failures %d of %d (%.2f%%), want at most %.0f%%",
			counts.AllowedFailures, counts.AllowedProbes, 100*r, 100*maxAllowedFailureRatio)
	}
}

func formatFigures(f map[string]any) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, f[k]))
	}
	return strings.Join(parts, " ")
}
