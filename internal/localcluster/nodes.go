package localcluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/internal/netns"
)

const (
	fabricBridge = "br0"
	// agentHealthAddr and agentMetricsAddr are on each node's own loopback.
	agentHealthAddr  = "127.0.0.1:9441"
	agentMetricsAddr = "127.0.0.1:9442"
	// AgentHubbleAddr is where each agent serves the Hubble observer API,
	// on its node's loopback; reach it with DialNode.
	AgentHubbleAddr = "127.0.0.1:4244"
	// ReportInterval is the agents' --report-interval: short, so that tests
	// see flows on intents' status within seconds.
	ReportInterval = time.Second
)

func (c *Cluster) createFabric() error {
	ns := c.fabricNetns()
	if err := c.recordNetns(ns); err != nil {
		return err
	}
	fabric, err := netns.Create(ns)
	if err != nil {
		return err
	}
	defer func() { _ = fabric.Close() }()
	nl, err := fabric.Netlink()
	if err != nil {
		return err
	}
	defer nl.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: fabricBridge}}
	if err := nl.LinkAdd(br); err != nil {
		return fmt.Errorf("add fabric bridge: %w", err)
	}
	return nl.LinkSetUp(br)
}

// createNode makes node i: its namespace, its link to the fabric, routes to
// the other nodes' pod CIDRs, forwarding on.
func (c *Cluster) createNode(i, total int) (NodeState, error) {
	n := NodeState{
		Name:    fmt.Sprintf("node-%d", i),
		Index:   i,
		Netns:   c.nodeNetns(i),
		IP:      nodeIP(i).String(),
		PodCIDR: podCIDR(i).String(),
	}
	if err := c.recordNetns(n.Netns); err != nil {
		return n, err
	}
	nodeNS, err := netns.Create(n.Netns)
	if err != nil {
		return n, err
	}
	defer func() { _ = nodeNS.Close() }()
	fabric, err := netns.Open(c.fabricNetns())
	if err != nil {
		return n, err
	}
	defer func() { _ = fabric.Close() }()
	fab, err := fabric.Netlink()
	if err != nil {
		return n, err
	}
	defer fab.Close()
	br, err := fab.LinkByName(fabricBridge)
	if err != nil {
		return n, err
	}
	port := fmt.Sprintf("node%d", i)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(nodeNS.Fd),
	}
	if err := fab.LinkAdd(veth); err != nil {
		return n, fmt.Errorf("add fabric link for %s: %w", n.Name, err)
	}
	if err := fab.LinkSetUp(veth); err != nil {
		return n, err
	}
	nl, err := nodeNS.Netlink()
	if err != nil {
		return n, err
	}
	defer nl.Close()
	eth0, err := nl.LinkByName("eth0")
	if err != nil {
		return n, err
	}
	addr, _ := netlink.ParseAddr(n.IP + "/24")
	if err := nl.AddrAdd(eth0, addr); err != nil {
		return n, fmt.Errorf("address %s: %w", n.Name, err)
	}
	if err := nl.LinkSetUp(eth0); err != nil {
		return n, err
	}
	for j := 1; j <= total; j++ {
		if j == i {
			continue
		}
		dst := podCIDR(j)
		if err := nl.RouteAdd(&netlink.Route{
			Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 32)},
			Gw:  nodeIP(j).AsSlice(),
		}); err != nil {
			return n, fmt.Errorf("route to %s on %s: %w", dst, n.Name, err)
		}
	}
	return n, netns.MakeNode(nodeNS)
}

// registerNode creates the Node object and marks it Ready, as a kubelet would.
func (c *Cluster) registerNode(ctx context.Context, n NodeState) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux",
		}},
		Spec: corev1.NodeSpec{PodCIDR: n.PodCIDR, PodCIDRs: []string{n.PodCIDR}},
	}
	if err := c.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	now := metav1.Now()
	node.Status = corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "LocalCluster",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}},
	}
	if err := c.Client.Status().Update(ctx, node); err != nil {
		return fmt.Errorf("node %s status: %w", n.Name, err)
	}
	return nil
}

func (c *Cluster) startAPIProxy() error {
	bin := filepath.Join(c.State.BinDir, "local-cluster")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no local-cluster binary at %s (make build): %w", bin, err)
	}
	var nss []string
	for _, n := range c.State.Nodes {
		nss = append(nss, n.Netns)
	}
	addr := "127.0.0.1:" + strconv.Itoa(c.State.APIPort)
	if _, err := c.startProcess("apiproxy", "", bin, "apiproxy", "--target="+addr, "--listen="+addr, "--netns="+strings.Join(nss, ",")); err != nil {
		return err
	}
	for _, n := range c.State.Nodes {
		if err := waitFor(10*time.Second, "the API proxy on "+n.Name, func() error {
			conn, err := netns.Dial(context.Background(), n.Netns, addr)
			if err != nil {
				return err
			}
			return conn.Close()
		}); err != nil {
			return err
		}
	}
	return nil
}

// RunAPIProxy forwards TCP connections accepted on listen inside each of the
// namespaces to target in the namespace this process runs in (the root one).
// It lets agents in node namespaces reach an API server bound to the host's
// loopback without giving the host any address or route.
func RunAPIProxy(ctx context.Context, target, listen string, namespaces []string) error {
	var ls []net.Listener
	for _, ns := range namespaces {
		l, err := netns.Listen(ns, listen)
		if err != nil {
			return fmt.Errorf("listen in %s: %w", ns, err)
		}
		ls = append(ls, l)
	}
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			netns.Forward(l, target)
		}()
	}
	<-ctx.Done()
	for _, l := range ls {
		_ = l.Close()
	}
	wg.Wait()
	return nil
}

func (c *Cluster) agentName(n NodeState) string { return "agent-" + n.Name }

func (c *Cluster) startAgent(n NodeState) error {
	bin := filepath.Join(c.State.BinDir, "agent")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no agent binary at %s (make build): %w", bin, err)
	}
	args := []string{bin,
		"--kubeconfig=" + c.KubeconfigPath(),
		"--node-name=" + n.Name,
		"--backend=" + c.State.Backend,
		"--metrics-bind-address=" + agentMetricsAddr,
		"--health-probe-bind-address=" + agentHealthAddr,
		"--hubble-bind-address=" + AgentHubbleAddr,
		"--report-interval=" + ReportInterval.String(),
		"--state-file=" + filepath.Join(c.Dir, "agent-state-"+n.Name+".json"),
	}
	// For diagnosis, e.g. PALISADE_AGENT_EXTRA_ARGS=--zap-log-level=debug.
	args = append(args, strings.Fields(os.Getenv("PALISADE_AGENT_EXTRA_ARGS"))...)
	_, err := c.startProcess(c.agentName(n), n.Netns, args...)
	return err
}

// DialNode opens a TCP connection from inside a node's network namespace,
// e.g. to the agent's Hubble API on the node's loopback.
func (c *Cluster) DialNode(ctx context.Context, n NodeState, addr string) (net.Conn, error) {
	return netns.Dial(ctx, n.Netns, addr)
}

// WaitAgentsReady waits until every agent's /readyz answers 200 (after its
// first sync).
func (c *Cluster) WaitAgentsReady(timeout time.Duration) error {
	for _, n := range c.State.Nodes {
		hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return netns.Dial(ctx, n.Netns, addr)
			},
		}}
		if err := waitFor(timeout, "the agent on "+n.Name+" to be ready", func() error {
			if !c.processRunning(c.agentName(n)) {
				return c.exited(c.agentName(n))
			}
			return httpOK(hc, "http://"+agentHealthAddr+"/readyz")
		}); err != nil {
			return err
		}
	}
	return nil
}
