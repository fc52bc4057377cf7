//go:build reliability

package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/localcluster"
	"github.com/palisade-dev/palisade/internal/netns"
	"github.com/palisade-dev/palisade/internal/policy"
)

var (
	cl      *localcluster.Cluster
	binDir  string
	pods    = map[string]*localcluster.Pod{}
	quick   = os.Getenv("RELIABILITY_QUICK") != ""
	outDir  = envOr("RELIABILITY_OUT", filepath.Join(os.TempDir(), "palisade-reliability"))
	started = time.Now()
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func clusterDir() string { return filepath.Join(os.TempDir(), "palisade-reliability-cluster") }

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "reliability: needs root (network namespaces, netfilter)")
		return 1
	}
	if err := localcluster.Down(clusterDir()); err != nil {
		fmt.Fprintln(os.Stderr, "reliability: remove leftovers:", err)
		return 1
	}
	_ = os.RemoveAll(outDir)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "palisade-reliability-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/agent", "./cmd/controller", "./hack/podserver", "./hack/local-cluster")
	build.Dir = kubeassets.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "reliability: build: %v\n%s", err, out)
		return 1
	}
	ctx := context.Background()
	root := kubeassets.RepoRoot()
	cl, err = localcluster.Up(ctx, localcluster.Config{
		Dir: clusterDir(), Prefix: "prl", Nodes: 2, Backend: "nftables", BinDir: binDir,
		AssetsDir: kubeassets.Dir(), CRDDir: filepath.Join(root, "config", "crd", "bases"),
		Log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "reliability: "+f+"\n", a...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability: up:", err)
		return 1
	}
	code := func() int {
		layout, err := cl.DeployNetpolLayout(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reliability: layout:", err)
			return 1
		}
		for _, p := range layout {
			pods[p.Key()] = p
		}
		if err := applyBasePolicy(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "reliability: base policy:", err)
			return 1
		}
		return m.Run()
	}()
	if code != 0 {
		// Down removes the cluster's directory: keep the processes' logs of
		// a failed run for diagnosis.
		keep := filepath.Join(outDir, "logs")
		if err := os.CopyFS(keep, os.DirFS(filepath.Join(cl.Dir, "logs"))); err == nil {
			fmt.Fprintln(os.Stderr, "reliability: logs kept in", keep)
		}
	}
	if err := cl.Down(); err != nil {
		fmt.Fprintln(os.Stderr, "reliability: down:", err)
		code = 1
	}
	if err := writeDoc(filepath.Join(root, "docs", "reliability.md")); err != nil {
		fmt.Fprintln(os.Stderr, "reliability: write docs/reliability.md:", err)
		code = 1
	}
	return code
}

// The probe pairs. x/a (node-1) is isolated by policy "base": it accepts
// x/b (node-2) on TCP and UDP 80 and on the long-lived echo ports, nothing
// else. x/c (node-1, same node as x/a) and y/b are denied; x/b on 81 is
// denied. y/a -> z/a is unpoliced (allowed).
const (
	echoTCP = 7070
	echoUDP = 7071
)

type pair struct {
	From, To string
	Port     localcluster.Port
	Allowed  bool
}

var pairs = []pair{
	{"x/b", "x/a", localcluster.Port{Port: 80, Protocol: corev1.ProtocolTCP}, true},
	{"x/b", "x/a", localcluster.Port{Port: 80, Protocol: corev1.ProtocolUDP}, true},
	{"y/a", "z/a", localcluster.Port{Port: 80, Protocol: corev1.ProtocolTCP}, true},
	{"x/c", "x/a", localcluster.Port{Port: 80, Protocol: corev1.ProtocolTCP}, false},
	{"x/c", "x/a", localcluster.Port{Port: 80, Protocol: corev1.ProtocolUDP}, false},
	{"y/b", "x/a", localcluster.Port{Port: 80, Protocol: corev1.ProtocolTCP}, false},
	{"x/b", "x/a", localcluster.Port{Port: 81, Protocol: corev1.ProtocolTCP}, false},
	{"x/b", "x/a", localcluster.Port{Port: 81, Protocol: corev1.ProtocolUDP}, false},
}

func basePolicy(ports ...networkingv1.NetworkPolicyPort) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "base"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"pod": "a"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"pod": "b"}}}},
				Ports: ports,
			}},
		},
	}
}

func npPort(proto corev1.Protocol, port int) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt(port)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

func basePorts() []networkingv1.NetworkPolicyPort {
	return []networkingv1.NetworkPolicyPort{
		npPort(corev1.ProtocolTCP, 80), npPort(corev1.ProtocolUDP, 80),
		npPort(corev1.ProtocolTCP, echoTCP), npPort(corev1.ProtocolUDP, echoUDP),
	}
}

func applyBasePolicy(ctx context.Context) error {
	if err := localcluster.ApplyObject(ctx, cl.Client, basePolicy(basePorts()...)); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		f, a := probeAll()
		if f == 0 && a == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("base policy not enforced after 60s: %d forbidden successes, %d allowed failures", f, a)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func probeOne(p pair) bool {
	return localcluster.ProbeOnce(pods[p.From], pods[p.To], p.Port, 400*time.Millisecond) == nil
}

// probeAll probes every pair once and returns forbidden successes and
// allowed failures.
func probeAll() (forbidden, allowedFail int) {
	for _, p := range pairs {
		if ok := probeOne(p); ok && !p.Allowed {
			forbidden++
		} else if !ok && p.Allowed {
			allowedFail++
		}
	}
	return
}

func nodeByName(name string) localcluster.NodeState {
	n, ok := cl.Node(name)
	if !ok {
		panic("no node " + name)
	}
	return n
}

func agent(node string) proc {
	return proc{cl.AgentProcess(nodeByName(node))}
}

// agentReady tells whether the node's agent answers /readyz with 200.
func agentReady(node string) bool {
	ns := nodeByName(node).Netns
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return netns.Dial(ctx, ns, addr)
		},
	}}
	resp, err := hc.Get("http://" + cl.State.AgentHealthAddress + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitAgentReady polls /readyz every 20ms and returns how long it took.
func waitAgentReady(t *testing.T, node string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for !agentReady(node) {
		if time.Since(start) > timeout {
			t.Fatalf("agent on %s not ready after %s", node, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// kernelTable is `nft list table inet palisade` of a node ("" when absent).
func kernelTable(node string) string {
	out, err := netns.Command(nodeByName(node).Netns, "nft", "list", "table", "inet", render.TableName).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// desiredTable programs the state the API objects ask of node into a
// scratch namespace with the nftables backend and lists it: the ruleset a
// correct agent must hold.
func desiredTable(t *testing.T, node string) string {
	t.Helper()
	ctx := context.Background()
	var podList corev1.PodList
	var nsList corev1.NamespaceList
	var npList networkingv1.NetworkPolicyList
	for _, l := range []client.ObjectList{&podList, &nsList, &npList} {
		if err := cl.Client.List(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	in := policy.Input{NodeName: node}
	for i := range podList.Items {
		in.Pods = append(in.Pods, policy.PodFromAPI(&podList.Items[i]))
	}
	for i := range nsList.Items {
		in.Namespaces = append(in.Namespaces, policy.NamespaceFromAPI(&nsList.Items[i]))
	}
	for i := range npList.Items {
		in.Policies = append(in.Policies, &npList.Items[i])
	}
	st := policy.Compute(in)
	scratch, err := netns.NewSet("prl").Create(fmt.Sprintf("scratch-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = scratch.Delete() }()
	if _, err := nft.New(nft.WithNetNSFd(scratch.Fd)).Sync(ctx, &st); err != nil {
		t.Fatal(err)
	}
	out, err := scratch.Exec("nft", "list", "table", "inet", render.TableName)
	if err != nil {
		t.Fatalf("list scratch table: %v\n%s", err, out)
	}
	return string(out)
}

// result is one scenario's figures, written to <outDir>/<id>.json.
type result struct {
	ID       string         `json:"id"`
	Title    string         `json:"title"`
	Measured string         `json:"measured"`
	Outcome  string         `json:"outcome"` // pass, fail, not-run
	Figures  map[string]any `json:"figures"`
	Notes    []string       `json:"notes,omitempty"`
	Quick    bool           `json:"quick"`
	Duration string         `json:"duration"`
}

// record writes r when the test ends, with the outcome the test had: a
// skipped test is recorded as not run and fails.
func record(t *testing.T, r *result) {
	start := time.Now()
	t.Cleanup(func() {
		r.Quick = quick
		r.Duration = time.Since(start).Round(time.Second).String()
		switch {
		case t.Skipped():
			// A scenario that did not run shows nothing: never a pass.
			r.Outcome = "not-run"
			t.Errorf("scenario %s did not run: a skipped scenario fails the run", r.ID)
		case t.Failed():
			r.Outcome = "fail"
		default:
			r.Outcome = "pass"
		}
		b, _ := json.MarshalIndent(r, "", "  ")
		_ = os.WriteFile(filepath.Join(outDir, r.ID+".json"), b, 0o644)
	})
}

// restoredLine is what an agent logs once it has programmed its saved state
// at start-up.
const restoredLine = "restored the last synced state"

// stateFile is the --state-file of node's running agent: the agent saves
// each changed state there after committing it and cutting the connections
// it denies, and its first state after every start.
func stateFile(t *testing.T, node string) string {
	t.Helper()
	argv, err := agent(node).cmdline()
	if err != nil {
		t.Fatal(err)
	}
	for _, arg := range argv {
		if v, ok := strings.CutPrefix(arg, "--state-file="); ok {
			return v
		}
	}
	t.Fatalf("%s's agent runs without --state-file", node)
	return ""
}

// stateSaved is when node's agent last saved its state (zero if never).
func stateSaved(t *testing.T, node string) time.Time {
	t.Helper()
	fi, err := os.Stat(stateFile(t, node))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// waitStateSaved waits until node's agent has saved its state after prev
// and returns when it did.
func waitStateSaved(t *testing.T, node string, prev time.Time, timeout time.Duration) time.Time {
	t.Helper()
	path := stateFile(t, node)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(path); err == nil && fi.ModTime().After(prev) {
			return fi.ModTime()
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s's agent saved no state within %s", node, timeout)
		}
	}
}
