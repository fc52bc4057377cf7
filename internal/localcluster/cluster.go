// Package localcluster runs a local Kubernetes cluster made of a real
// kube-apiserver and etcd plus network namespaces, and probes it.
//
// Topology (prefix "palisade", two nodes):
//
//	root netns: etcd, kube-apiserver (127.0.0.1), controller, API proxy
//	palisade-fabric: bridge br0 joining the nodes (10.99.0.0/24)
//	palisade-node-1: eth0 10.99.0.11, one veth per pod, agent; pods 10.244.1.0/24
//	palisade-node-2: eth0 10.99.0.12, ...;                     pods 10.244.2.0/24
//	palisade-<ns>-<pod>: a pod: eth0 with a /32, default route to its node
//
// Pods are routed (the node side of each veth has proxy_arp and a /32 route),
// so pod-to-pod traffic, local or remote, crosses the node namespace's forward
// hook, where the agent enforces NetworkPolicy. Nodes route each other's pod
// CIDRs over the fabric. The root namespace gets no address, route or link: the
// agents reach the API server through a proxy that listens on each node's
// loopback at the API server's port, so one kubeconfig serves everyone.
package localcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Config describes a local cluster.
type Config struct {
	// Dir holds the cluster's state: kubeconfig, certificates, etcd data,
	// pid files and logs.
	Dir string
	// Prefix names the cluster's network namespaces: <prefix>-node-1,
	// <prefix>-<namespace>-<pod>, <prefix>-fabric.
	Prefix string
	// Nodes is the number of nodes (1-9).
	Nodes int
	// Backend is the agent's --backend.
	Backend string
	// BinDir holds agent, controller, podserver and local-cluster.
	BinDir string
	// AssetsDir holds kube-apiserver and etcd.
	AssetsDir string
	// CRDDir holds the CRDs to install.
	CRDDir string
	// ConfigDir is the kustomize tree real nodes deploy Palisade from
	// (ConfigDir/default).
	ConfigDir string
	// NoAgents and NoController leave those out (for working on the harness
	// itself before they exist).
	NoAgents, NoController bool
	// Log receives progress messages.
	Log func(format string, args ...any)
}

// State is what `up` records in Dir/state.json for later commands.
type State struct {
	Prefix             string      `json:"prefix"`
	Backend            string      `json:"backend"`
	BinDir             string      `json:"binDir"`
	APIPort            int         `json:"apiPort"`
	EtcdPort           int         `json:"etcdPort"`
	EtcdPeerPort       int         `json:"etcdPeerPort"`
	ControllerHealth   int         `json:"controllerHealthPort"`
	ControllerMetrics  int         `json:"controllerMetricsPort"`
	Nodes              []NodeState `json:"nodes"`
	NoAgents           bool        `json:"noAgents,omitempty"`
	NoController       bool        `json:"noController,omitempty"`
	Layout             string      `json:"layout,omitempty"`
	AgentHealthAddress string      `json:"agentHealthAddress"`
	// RealNodes: kubelet, containerd and kube-proxy run per node (realnode.go).
	RealNodes bool `json:"realNodes,omitempty"`
}

// NodeState is one node.
type NodeState struct {
	Name    string `json:"name"`
	Index   int    `json:"index"`
	Netns   string `json:"netns"`
	IP      string `json:"ip"`
	PodCIDR string `json:"podCIDR"`
}

// Cluster is a running (or stopped) local cluster.
type Cluster struct {
	Dir   string
	State State
	// Client is an admin client for the cluster.
	Client    client.Client
	Clientset kubernetes.Interface
	Rest      *rest.Config
	log       func(format string, args ...any)
	podMu     sync.Mutex // serializes pod address allocation
}

// KubeconfigPath is where the admin kubeconfig lives.
func (c *Cluster) KubeconfigPath() string { return filepath.Join(c.Dir, "kubeconfig") }

func (c *Cluster) statePath() string { return filepath.Join(c.Dir, "state.json") }

func (c *Cluster) saveState() error {
	b, err := json.MarshalIndent(c.State, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.statePath(), b, 0o644)
}

// Load opens the cluster whose state lives in dir.
func Load(dir string) (*Cluster, error) {
	c := &Cluster{Dir: dir, log: func(string, ...any) {}}
	b, err := os.ReadFile(c.statePath())
	if err != nil {
		return nil, fmt.Errorf("no local cluster in %s (run up first): %w", dir, err)
	}
	if err := json.Unmarshal(b, &c.State); err != nil {
		return nil, fmt.Errorf("read %s: %w", c.statePath(), err)
	}
	if err := c.connect(); err != nil {
		return nil, err
	}
	return c, nil
}

// SetLogger sets where progress messages go.
func (c *Cluster) SetLogger(log func(format string, args ...any)) {
	if log != nil {
		c.log = log
	}
}

func (c *Cluster) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	c.Rest = cfg
	if c.Client, err = client.New(cfg, client.Options{Scheme: Scheme}); err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	if c.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("create clientset: %w", err)
	}
	return nil
}

// Node returns the node with the given name.
func (c *Cluster) Node(name string) (NodeState, bool) {
	for _, n := range c.State.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeState{}, false
}

// The namespaces a cluster has created are listed, one per line, in
// Dir/netns before they are created, so `down` removes exactly those (and
// never another project's namespaces that happen to share our prefix).

func (c *Cluster) netnsListPath() string { return filepath.Join(c.Dir, "netns") }

var netnsListMu sync.Mutex

func (c *Cluster) recordNetns(name string) error {
	netnsListMu.Lock()
	defer netnsListMu.Unlock()
	names := c.recordedNetns()
	if slices.Contains(names, name) {
		return nil
	}
	f, err := os.OpenFile(c.netnsListPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = fmt.Fprintln(f, name)
	return err
}

func (c *Cluster) forgetNetns(name string) error {
	netnsListMu.Lock()
	defer netnsListMu.Unlock()
	names := slices.DeleteFunc(c.recordedNetns(), func(n string) bool { return n == name })
	return os.WriteFile(c.netnsListPath(), []byte(strings.Join(append(names, ""), "\n")), 0o644)
}

func (c *Cluster) recordedNetns() []string {
	b, err := os.ReadFile(c.netnsListPath())
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (c *Cluster) nodeNetns(i int) string { return fmt.Sprintf("%s-node-%d", c.State.Prefix, i) }
func (c *Cluster) fabricNetns() string    { return c.State.Prefix + "-fabric" }

// PodNetns is the network namespace of a pod: <prefix>-<namespace>-<name>.
func (c *Cluster) PodNetns(namespace, name string) string {
	return fmt.Sprintf("%s-%s-%s", c.State.Prefix, namespace, name)
}

func nodeIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 99, 0, byte(10 + i)}) }
func podCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)
}

var errNotRoot = errors.New("the local cluster needs root (network namespaces, veths, routes)")
