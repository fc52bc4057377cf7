//go:build e2e && realnodes

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	palisadev1alpha1 "github.com/palisade-dev/palisade/api/v1alpha1"

	"github.com/palisade-dev/palisade/internal/localcluster"
	"github.com/palisade-dev/palisade/internal/pki"
	"github.com/palisade-dev/palisade/internal/pki/pkitest"
)

// checkNothingServedToPods checks Palisade's ports on node-1 as shipped: a
// pod there (allowed-1) cannot reach the loopback-only flow API and probes;
// from the node network, the mutual-TLS flow API serves no client without a
// certificate of Palisade's CA, metrics need a token, and the flow API reads
// flows with a certificate from `kubectl palisade flows-cert` and through
// `kubectl port-forward`.
func checkNothingServedToPods(t *testing.T, c *localcluster.Cluster, kubectl string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node, err := c.Clientset.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var nodeIP string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			nodeIP = a.Address
		}
	}
	agents, err := c.Clientset.CoreV1().Pods("palisade-system").List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/name=palisade-agent", FieldSelector: "spec.nodeName=node-1"})
	if err != nil || len(agents.Items) != 1 {
		t.Fatalf("the agent pod of node-1: %v %v", agents, err)
	}
	agentPod := agents.Items[0].Name
	addr := func(port int) string { return net.JoinHostPort(nodeIP, fmt.Sprint(port)) }

	t.Run("from a pod: loopback ports refused, the mTLS port open", func(t *testing.T) {
		for port, want := range map[int]string{4244: "REFUSED", 9102: "REFUSED", 4245: ""} {
			out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.KubeconfigPath(), "exec", "-n", "rn", "allowed-1", "--",
				"/agnhost", "connect", addr(port), "--timeout=2s").CombinedOutput()
			switch {
			case want == "" && err != nil:
				t.Errorf("connect to %s from a pod: %v: %s", addr(port), err, out)
			case want != "" && !strings.Contains(string(out), want):
				t.Errorf("connect to %s from a pod: %v %s, want %s", addr(port), err, out, want)
			}
		}
	})

	// A flows client certificate for the admin, as a user gets one.
	dir := t.TempDir()
	if out, err := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl-palisade"), "flows-cert", "--kubeconfig", c.KubeconfigPath(),
		"--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("kubectl palisade flows-cert: %v: %s", err, out)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	palisadeCA := x509.NewCertPool()
	palisadeCA.AppendCertsFromPEM(caPEM)
	issued, err := tls.LoadX509KeyPair(filepath.Join(dir, "flows.crt"), filepath.Join(dir, "flows.key"))
	if err != nil {
		t.Fatal(err)
	}
	// A client certificate of a CA that is not Palisade's.
	other := pkitest.Issue(t, pkitest.NewCA(t, "not-palisade"), pki.Request{CommonName: "admin"}, x509.ExtKeyUsageClientAuth, time.Now(), time.Hour)

	serverStatus := func(target string, creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = observerpb.NewObserverClient(conn).ServerStatus(ctx, &observerpb.ServerStatusRequest{})
		return err
	}
	mtls := func(certs ...tls.Certificate) credentials.TransportCredentials {
		return credentials.NewTLS(&tls.Config{RootCAs: palisadeCA, Certificates: certs, MinVersion: tls.VersionTLS13})
	}

	t.Run("mTLS flow API: refused without a Palisade client certificate", func(t *testing.T) {
		for name, creds := range map[string]credentials.TransportCredentials{
			"plaintext": insecure.NewCredentials(), "no certificate": mtls(), "another CA's certificate": mtls(other),
		} {
			if err := serverStatus(addr(4245), creds); err == nil {
				t.Errorf("%s: served", name)
			}
		}
	})
	t.Run("mTLS flow API: served to flows-cert's certificate, verified as the node's address", func(t *testing.T) {
		// The agent gets its certificate at start; it may still be on its way.
		if err := waitForCond(time.Minute, "the agent's mTLS flow API", func() error { return serverStatus(addr(4245), mtls(issued)) }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("metrics: no token, no metrics", func(t *testing.T) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the status is under test, not the certificate
		resp, err := hc.Get("https://" + addr(9101) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("the agent's own NodeFlowReport passes the admission policy", func(t *testing.T) {
		// Written at start and every report interval (10 s) after: a report
		// newer than the agent's pod was admitted.
		started := agents.Items[0].CreationTimestamp.Time
		if err := waitForCond(time.Minute, "node-1's report", func() error {
			var r palisadev1alpha1.NodeFlowReport
			if err := c.Client.Get(ctx, client.ObjectKey{Name: "node-1"}, &r); err != nil {
				return err
			}
			if r.Spec.ReportedAt.Time.Before(started) {
				return fmt.Errorf("last reported at %s, before the agent started", r.Spec.ReportedAt)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("plaintext flow API through kubectl port-forward", func(t *testing.T) {
		local := portForward(t, ctx, kubectl, c.KubeconfigPath(), "palisade-system", agentPod, 4244)
		if err := serverStatus(local, insecure.NewCredentials()); err != nil {
			t.Errorf("ServerStatus through port-forward: %v", err)
		}
	})
}

var forwardingFrom = regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) ->`)

// portForward runs kubectl port-forward to port of the pod until the test
// ends, and returns the local address.
func portForward(t *testing.T, ctx context.Context, kubectl, kubeconfig, ns, pod string, port int) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "port-forward", "-n", ns, "--address", "127.0.0.1", "pod/"+pod, fmt.Sprintf(":%d", port))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := forwardingFrom.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() { // keep draining so kubectl never blocks on stdout
				}
			}()
			return m[1]
		}
	}
	_ = cmd.Wait()
	t.Fatalf("kubectl port-forward printed no local address: %v: %s", sc.Err(), stderr.String())
	return ""
}
