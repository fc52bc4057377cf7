package kerneltest

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/internal/kubeassets"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

// restartPolicy lets y/d (and, in its second version, y/b) reach x/a on
// TCP 80 and nothing else.
func restartPolicy(apps ...string) *networkingv1.NetworkPolicy {
	return pt.Policy("x", "web", pt.Selecting(app("a")), pt.IngressRule([]networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "y"}},
		PodSelector:       expr("app", metav1.LabelSelectorOpIn, apps...),
	}}, pt.TCP(80)))
}

var (
	// allowedThroughout are allowed before, during and after the restart.
	allowedThroughout = all(tcp("y/d", "x/a", 80, yes), tcp("x/a", "y/d", 80, yes), tcp("node", "x/a", 80, yes))
	// deniedThroughout are denied before, during and after the restart.
	deniedThroughout = all(tcp("y/d", "x/a", 81, no), udp("y/d", "x/a", 53, no), sctp("y/d", "x/a", 90, no),
		tcp("z/e", "x/a", 80, no), tcp("y/r", "x/a", 80, no))
	// changedWhileDown is denied until the agent restarts and reads the
	// policy changed while it was down.
	changedWhileDown = all(tcp("y/b", "x/a", 80, no))
)

func flip(ps []probe) []probe {
	out := make([]probe, len(ps))
	for i, p := range ps {
		p.want = !p.want
		out[i] = p
	}
	return out
}

// restartScenario runs the restart story around start/kill functions:
// with the agent enforcing restartPolicy and a connection exchanging data,
// the agent goes down; while it is down every allowed probe passes, no
// denied one does, and the policy changes; a new agent then enforces the
// change. The connection must never break.
func restartScenario(t *testing.T, env *apiEnv, c *cluster, start func(), kill func()) {
	env.apply(t, restartPolicy("d"))
	start()
	c.eventually(t, "first agent enforces", join(allowedThroughout, deniedThroughout, changedWhileDown))

	stream, err := netnstest.OpenStream(c.ns("y/d"), c.addr("x/a", true), 80)
	if err != nil {
		t.Fatalf("open the long-lived connection: %v", err)
	}
	defer stream.Close()

	kill()
	c.always(t, "agent down", 3, join(allowedThroughout, deniedThroughout, changedWhileDown))
	env.apply(t, restartPolicy("b", "d"))
	c.always(t, "agent down, policy changed", 2, join(allowedThroughout, deniedThroughout, changedWhileDown))

	start()
	c.eventually(t, "restarted agent enforces the change", join(allowedThroughout, deniedThroughout, flip(changedWhileDown)))
	c.always(t, "after the restart", 1, join(allowedThroughout, deniedThroughout, flip(changedWhileDown)))

	before := stream.Rounds()
	// A few more exchanges after the restart.
	for deadline := time.Now().Add(2 * time.Second); stream.Rounds() <= before+2 && stream.Err() == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("the long-lived connection broke: %v", err)
	}
	if stream.Rounds() <= before || before < 10 {
		t.Fatalf("the long-lived connection stalled: %d exchanges, %d a moment earlier", stream.Rounds(), before)
	}
	t.Logf("long-lived connection: %d exchanges across the restart", stream.Rounds())
}

// TestAgentRestart restarts the agent with traffic flowing, for both
// backends: the in-process sync loop stopped by cancelling its context, and
// the real agent binary (built here) run in the node's namespace with
// `ip netns exec` and killed with SIGKILL. Each restart uses a fresh
// backend, so the new agent's first sync is a full rebuild.
func TestAgentRestart(t *testing.T) {
	env := startAPI(t)
	binDir := t.TempDir()
	var bin string
	var buildErr error
	var buildOnce sync.Once
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			c := newCluster(t)
			env.ensureObjects(t, c)
			t.Run("in process", func(t *testing.T) {
				t.Cleanup(func() { env.removePolicies(t) })
				var r *runningAgent
				restartScenario(t, env, c,
					func() { r = env.startAgent(t, bk.new(t, c.a.NS)) },
					func() { r.stop() })
			})
			t.Run("binary killed", func(t *testing.T) {
				t.Cleanup(func() { env.removePolicies(t) })
				buildOnce.Do(func() { bin, buildErr = buildAgent(binDir) })
				if buildErr != nil {
					t.Fatal(buildErr)
				}
				kubeconfig := env.nodeKubeconfig(t, c.a.NS)
				var cmd *exec.Cmd
				restartScenario(t, env, c,
					func() { cmd = startBinary(t, bin, kubeconfig, c.a.NS, bk.name) },
					func() {
						if err := cmd.Process.Kill(); err != nil {
							t.Fatalf("kill the agent: %v", err)
						}
						_ = cmd.Wait()
					})
			})
		})
	}
}

// buildAgent builds cmd/agent into dir.
func buildAgent(dir string) (string, error) {
	bin := filepath.Join(dir, "agent")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/agent")
	cmd.Dir = kubeassets.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/agent: %w\n%s", err, out)
	}
	return bin, nil
}

// nodeKubeconfig writes a kubeconfig for a process in the node's
// namespace: the node's loopback forwards the API server's port to the
// host's, so the server's address and certificate stay valid.
func (e *apiEnv) nodeKubeconfig(t *testing.T, node *netnstest.NS) string {
	t.Helper()
	u, err := url.Parse(e.cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	node.ForwardTCP(t, u.Host, u.Host)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: e.cfg.Host, CertificateAuthorityData: e.cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: e.cfg.CertData, ClientKeyData: e.cfg.KeyData, Token: e.cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBinary runs the agent binary in the node's namespace; its log goes
// to the test log when the test fails.
func startBinary(t *testing.T, bin, kubeconfig string, node *netnstest.NS, backend string) *exec.Cmd {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), "agent-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", node.Name, bin,
		"--kubeconfig="+kubeconfig, "--node-name="+nodeA, "--backend="+backend,
		"--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0",
		"--state-file="+filepath.Join(t.TempDir(), "agent-state.json"), "--hubble-bind-address=0")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the agent: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("agent log (%s):\n%s", backend, out)
		}
	})
	return cmd
}
