package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	pnetns "github.com/palisade-dev/palisade/internal/netns"
)

// realNodesAPIServerArgs serve the API on the host's fabric address, which
// the lease endpoint reconciler publishes as the kubernetes Service's
// endpoint, so in-cluster clients (Palisade's pods) find it as on any
// cluster. The API server reaches kubelets by node IP for exec and logs, as
// the admin (the kubelets trust the cluster CA).
func realNodesAPIServerArgs(p *pki) []string {
	return []string{
		"--bind-address=" + hostIP.String(),
		"--advertise-address=" + hostIP.String(),
		"--kubelet-client-certificate=" + p.AdminCert,
		"--kubelet-client-key=" + p.AdminKey,
		"--kubelet-preferred-address-types=InternalIP",
	}
}

// UpRealNodes brings a local cluster with real nodes up (see realnode.go),
// and deploys CoreDNS and, unless cfg.NoController, Palisade from
// cfg.ConfigDir. On error it tears down what it made.
func UpRealNodes(ctx context.Context, cfg Config) (c *Cluster, err error) {
	bins, err := realNodeBinaries(cfg.AssetsDir)
	if err != nil {
		return nil, err
	}
	if c, err = newCluster(&cfg, State{
		Prefix: cfg.Prefix, Backend: cfg.Backend, BinDir: cfg.BinDir, RealNodes: true, NoController: cfg.NoController,
	}, func(st *State) []*int {
		return []*int{&st.APIPort, &st.EtcdPort, &st.EtcdPeerPort}
	}); err != nil {
		return nil, err
	}
	defer downOnError(&c, &err)

	start := time.Now()
	cfg.Log("creating %d nodes", cfg.Nodes)
	if err := c.createNodes(cfg.Nodes, true); err != nil {
		return c, err
	}
	archives, err := c.startRealNodesControlPlane(ctx, &cfg, bins, start)
	if err != nil {
		return c, err
	}
	cfg.Log("starting containerd, kubelet and kube-proxy on each node")
	if err := c.startRealNodes(ctx, &cfg, bins, archives); err != nil {
		return c, err
	}
	if err := c.deployCoreDNS(ctx); err != nil {
		return c, err
	}
	if cfg.NoController {
		cfg.Log("cluster up after %s (Palisade not deployed: nodes keep the agent-not-ready taint)", time.Since(start).Round(100*time.Millisecond))
		return c, nil
	}
	cfg.Log("deploying Palisade (backend %s): kubectl apply -k %s", cfg.Backend, filepath.Join(cfg.ConfigDir, "default"))
	if err := c.DeployPalisade(ctx, bins["kubectl"], cfg.ConfigDir, cfg.Backend); err != nil {
		return c, err
	}
	if err := c.WaitRealNodesReady(ctx, 3*time.Minute); err != nil {
		return c, err
	}
	cfg.Log("cluster up after %s", time.Since(start).Round(100*time.Millisecond))
	return c, nil
}

// startRealNodesControlPlane starts etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, and returns the node image
// archives, which build while the API server starts.
func (c *Cluster) startRealNodesControlPlane(ctx context.Context, cfg *Config, bins map[string]string, start time.Time) ([]string, error) {
	cfg.Log("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler")
	p, err := c.startEtcdAndAPIServer(cfg, hostIP.String(), realNodesAPIServerArgs)
	if err != nil {
		return nil, err
	}
	var archives []string
	imagesBuilt := make(chan error, 1)
	go func() {
		var err error
		archives, err = c.buildNodeImages(bins, cfg.AssetsDir)
		imagesBuilt <- err
	}()
	if err := c.waitAPIServer(ctx); err != nil {
		<-imagesBuilt
		return nil, err
	}
	cfg.Log("kube-apiserver ready after %s", time.Since(start).Round(100*time.Millisecond))
	if err := c.startControllerManager(bins, p); err != nil {
		return nil, err
	}
	if err := c.startScheduler(bins); err != nil {
		return nil, err
	}
	if err := <-imagesBuilt; err != nil {
		return nil, fmt.Errorf("build images: %w", err)
	}
	return archives, nil
}

// startRealNodes starts each node's containerd, kubelet and kube-proxy and
// loads the image archives into each containerd once its socket is up.
func (c *Cluster) startRealNodes(ctx context.Context, cfg *Config, bins map[string]string, archives []string) error {
	if err := c.recordHostPathsShadowed(); err != nil {
		return err
	}
	if err := c.saveKernelTunables(); err != nil {
		return err
	}
	for _, n := range c.State.Nodes {
		if err := c.startRealNode(n, bins); err != nil {
			return err
		}
	}
	for _, n := range c.State.Nodes {
		if err := waitFor(30*time.Second, "containerd on "+n.Name, func() error {
			if !c.processRunning(n.Name) {
				return c.exited(n.Name)
			}
			_, err := os.Stat(c.containerdSocket(n))
			return err
		}); err != nil {
			return err
		}
		t := time.Now()
		if err := c.importImages(ctx, n, bins["ctr"], archives); err != nil {
			return err
		}
		cfg.Log("images loaded into %s in %s", n.Name, time.Since(t).Round(100*time.Millisecond))
	}
	return nil
}

// createHostLink gives the host an address on the fabric (hostIP), where
// the API server listens.
func (c *Cluster) createHostLink() error {
	fab, err := pnetns.NetlinkAt(c.fabricNetns())
	if err != nil {
		return err
	}
	defer fab.Close()
	br, err := fab.LinkByName(fabricBridge)
	if err != nil {
		return err
	}
	root, err := netns.Get()
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "host", MasterIndex: br.Attrs().Index},
		PeerName:      hostLink,
		PeerNamespace: netlink.NsFd(root),
	}
	if err := fab.LinkAdd(veth); err != nil {
		return fmt.Errorf("add host link %s: %w", hostLink, err)
	}
	if err := fab.LinkSetUp(veth); err != nil {
		return err
	}
	link, err := netlink.LinkByName(hostLink)
	if err != nil {
		return err
	}
	addr, _ := netlink.ParseAddr(hostIP.String() + "/24")
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("address %s: %w", hostLink, err)
	}
	return netlink.LinkSetUp(link)
}

// linkNodeToHost routes a node's pod CIDR from the host via the node, and
// gives the node a default route via the host: a Service's ClusterIP has
// no route of its own, and without one the node's connections to it (the
// agent's, hostNetwork, to the kubernetes Service) fail with "network is
// unreachable" before kube-proxy's output hook can translate them. Both
// routes go when down deletes the namespaces.
func (c *Cluster) linkNodeToHost(n NodeState) error {
	link, err := netlink.LinkByName(hostLink)
	if err != nil {
		return err
	}
	_, dst, err := net.ParseCIDR(n.PodCIDR)
	if err != nil {
		return err
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Gw: net.ParseIP(n.IP)}); err != nil {
		return fmt.Errorf("route to %s via %s: %w", n.PodCIDR, n.Name, err)
	}
	nl, err := pnetns.NetlinkAt(n.Netns)
	if err != nil {
		return err
	}
	defer nl.Close()
	if err := nl.RouteAdd(&netlink.Route{Gw: hostIP.AsSlice()}); err != nil {
		return fmt.Errorf("default route of %s: %w", n.Name, err)
	}
	return nil
}

func (c *Cluster) startControllerManager(bins map[string]string, p *pki) error {
	// With a plain kubeconfig, each controller needs its own service
	// account's credentials, or the token controllers have none to mint.
	_, err := c.startProcess("kube-controller-manager", "", bins["kube-controller-manager"],
		"--kubeconfig="+c.KubeconfigPath(),
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+p.SAKey,
		"--root-ca-file="+p.CACert,
		"--cluster-name="+c.State.Prefix,
		"--leader-elect=false",
		"--secure-port=0",
		"--v=1",
	)
	return err
}

func (c *Cluster) startScheduler(bins map[string]string) error {
	_, err := c.startProcess("kube-scheduler", "", bins["kube-scheduler"],
		"--kubeconfig="+c.KubeconfigPath(),
		"--leader-elect=false",
		"--secure-port=0",
		"--v=1",
	)
	return err
}

// startRealNode starts the node's daemons (nodeScript) in its network
// namespace and a new mount namespace, under the node's name.
func (c *Cluster) startRealNode(n NodeState, bins map[string]string) error {
	f, err := c.writeNodeFiles(n, bins)
	if err != nil {
		return err
	}
	if err := createCgroupRoot(f.CgroupRoot); err != nil {
		return err
	}
	// The shell stays the node's process (it waits for its daemons), so the
	// pid file names /bin/sh; nsenter and unshare exec into it.
	inner := strings.Join([]string{bins["nsenter"], "--net=/run/netns/" + n.Netns,
		bins["unshare"], "--mount", "--propagation", "slave", "/bin/sh", filepath.Join(f.Dir, "node.sh")}, " ")
	_, err = c.startProcess(n.Name, "", "/bin/sh", "-c", "exec "+inner)
	return err
}

// recordHostPathsShadowed creates the host paths nodes mount over, and
// remembers those (and the host files pods create, hostFilesOfPods) that
// did not exist, for down to remove.
func (c *Cluster) recordHostPathsShadowed() error {
	var created []string
	for _, p := range hostFilesOfPods {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			created = append(created, p)
		}
	}
	for _, p := range hostPathsShadowed {
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		created = append(created, p)
	}
	return os.WriteFile(filepath.Join(c.Dir, "host-paths-created"), []byte(strings.Join(created, "\n")), 0o644)
}
