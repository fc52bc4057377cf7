package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// freePort asks the kernel for a free loopback port. Another process may
// take it before we bind it; `up` fails loudly if so.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) startEtcd(assets string) error {
	url := func(p int) string { return "http://127.0.0.1:" + strconv.Itoa(p) }
	_, err := c.startProcess("etcd", "", filepath.Join(assets, "etcd"),
		"--name=palisade",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+url(c.State.EtcdPort),
		"--advertise-client-urls="+url(c.State.EtcdPort),
		"--listen-peer-urls="+url(c.State.EtcdPeerPort),
		"--initial-advertise-peer-urls="+url(c.State.EtcdPeerPort),
		"--initial-cluster=palisade="+url(c.State.EtcdPeerPort),
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	return waitFor(30*time.Second, "etcd to be healthy", func() error {
		if !c.processRunning("etcd") {
			return c.exited("etcd")
		}
		resp, err := http.Get(url(c.State.EtcdPort) + "/health")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd health: %s", resp.Status)
		}
		return nil
	})
}

// simulatedNodesAPIServerArgs serve the API on the host's loopback only:
// agents reach it through the API proxy.
func simulatedNodesAPIServerArgs(*pki) []string {
	return []string{
		"--bind-address=127.0.0.1",
		// A loopback advertise address needs the endpoint reconciler off.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		// No kube-controller-manager creates the default ServiceAccount.
		"--disable-admission-plugins=ServiceAccount",
	}
}

// startAPIServer starts kube-apiserver listening on host with the
// mode-specific modeArgs, and writes the admin kubeconfig for host.
func (c *Cluster) startAPIServer(assets string, p *pki, host string, modeArgs []string) error {
	args := []string{filepath.Join(assets, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(c.State.EtcdPort),
		"--secure-port=" + strconv.Itoa(c.State.APIPort),
		"--tls-cert-file=" + p.ServingCert,
		"--tls-private-key-file=" + p.ServingKey,
		"--client-ca-file=" + p.CACert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.SAPub,
		"--service-account-signing-key-file=" + p.SAKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--cert-dir=" + filepath.Join(c.Dir, "pki"),
		"--profiling=false",
	}
	// For diagnosis, e.g. PALISADE_APISERVER_EXTRA_ARGS=--profiling=true.
	args = append(append(args, modeArgs...), strings.Fields(os.Getenv("PALISADE_APISERVER_EXTRA_ARGS"))...)
	if _, err := c.startProcess("kube-apiserver", "", args...); err != nil {
		return err
	}
	return c.writeKubeconfig(p, host)
}

func (c *Cluster) writeKubeconfig(p *pki, host string) error {
	ca, err := os.ReadFile(p.CACert)
	if err != nil {
		return err
	}
	crt, err := os.ReadFile(p.AdminCert)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(p.AdminKey)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["palisade-local"] = &clientcmdapi.Cluster{
		Server:                   "https://" + net.JoinHostPort(host, strconv.Itoa(c.State.APIPort)),
		CertificateAuthorityData: ca,
	}
	cfg.AuthInfos["palisade-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: crt, ClientKeyData: key}
	cfg.Contexts["palisade-local"] = &clientcmdapi.Context{Cluster: "palisade-local", AuthInfo: "palisade-admin", Namespace: "default"}
	cfg.CurrentContext = "palisade-local"
	if err := clientcmd.WriteToFile(*cfg, c.KubeconfigPath()); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

func (c *Cluster) waitAPIServer(ctx context.Context) error {
	if err := c.connect(); err != nil {
		return err
	}
	return waitFor(90*time.Second, "kube-apiserver to be ready", func() error {
		if !c.processRunning("kube-apiserver") {
			return c.exited("kube-apiserver")
		}
		body, err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("readyz: %w: %s", err, body)
		}
		return nil
	})
}

// Healthy reports whether the cluster's API server answers.
func (c *Cluster) Healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if !c.processRunning("kube-apiserver") {
		return fmt.Errorf("kube-apiserver of the cluster in %s is not running", c.Dir)
	}
	if _, err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return fmt.Errorf("kube-apiserver of the cluster in %s: %w", c.Dir, err)
	}
	return nil
}

func (c *Cluster) installCRDs(crdDir string) error {
	if _, err := os.Stat(crdDir); err != nil {
		c.log("no CRDs in %s yet; skipping", crdDir)
		return nil
	}
	_, err := envtest.InstallCRDs(c.Rest, envtest.CRDInstallOptions{
		Paths:        []string{crdDir},
		MaxTime:      30 * time.Second,
		PollInterval: 100 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("install crds from %s: %w", crdDir, err)
	}
	return nil
}

func (c *Cluster) startController() error {
	bin := filepath.Join(c.State.BinDir, "controller")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no controller binary at %s (make build): %w", bin, err)
	}
	args := []string{bin,
		"--kubeconfig=" + c.KubeconfigPath(),
		"--leader-elect=false",
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(c.State.ControllerMetrics),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(c.State.ControllerHealth),
	}
	// For diagnosis, e.g. PALISADE_CONTROLLER_EXTRA_ARGS=--pprof-bind-address=127.0.0.1:6060.
	args = append(args, strings.Fields(os.Getenv("PALISADE_CONTROLLER_EXTRA_ARGS"))...)
	_, err := c.startProcess("controller", "", args...)
	if err != nil {
		return err
	}
	return waitFor(60*time.Second, "the controller to be ready", func() error {
		if !c.processRunning("controller") {
			return c.exited("controller")
		}
		return httpOK(http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(c.State.ControllerHealth)+"/readyz")
	})
}

func httpOK(hc *http.Client, url string) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// permanentError stops waitFor at once.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// exited is the error for a process that died while we waited for it: it
// carries the end of its log, since `down` removes the log file.
func (c *Cluster) exited(name string) error {
	b, _ := os.ReadFile(c.logFile(name))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(0, len(lines)-15):]
	return permanentError{fmt.Errorf("%s exited; last lines of its log:\n%s", name, strings.Join(lines, "\n"))}
}

// waitFor polls check until it succeeds or timeout passes, or check returns
// a permanentError.
func waitFor(timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	delay := 50 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return fmt.Errorf("waiting for %s: %w", what, perm.error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 500*time.Millisecond)
	}
}
