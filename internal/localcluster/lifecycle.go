package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/palisade-dev/palisade/internal/netns"
)

// Up brings a local cluster up: control plane, CRDs, nodes, API proxy,
// agents, controller. On error it tears down what it made.
func Up(ctx context.Context, cfg Config) (c *Cluster, err error) {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(cfg.AssetsDir, b)); err != nil {
			return nil, fmt.Errorf("no %s in %s: run hack/setup-test-env.sh (make demo and make test do): %w", b, cfg.AssetsDir, err)
		}
	}
	if c, err = newCluster(&cfg, State{
		Prefix: cfg.Prefix, Backend: cfg.Backend, BinDir: cfg.BinDir,
		NoAgents: cfg.NoAgents, NoController: cfg.NoController,
		AgentHealthAddress: agentHealthAddr,
	}, func(st *State) []*int {
		return []*int{&st.APIPort, &st.EtcdPort, &st.EtcdPeerPort, &st.ControllerHealth, &st.ControllerMetrics}
	}); err != nil {
		return nil, err
	}
	defer downOnError(&c, &err)

	start := time.Now()
	cfg.Log("starting etcd and kube-apiserver")
	if _, err := c.startEtcdAndAPIServer(&cfg, "127.0.0.1", simulatedNodesAPIServerArgs); err != nil {
		return c, err
	}
	// Build the network while the API server starts.
	cfg.Log("creating %d nodes", cfg.Nodes)
	if err := c.createNodes(cfg.Nodes, false); err != nil {
		return c, err
	}
	if err := c.waitAPIServer(ctx); err != nil {
		return c, err
	}
	cfg.Log("kube-apiserver ready after %s", time.Since(start).Round(100*time.Millisecond))
	if err := c.installCRDs(cfg.CRDDir); err != nil {
		return c, err
	}
	for _, n := range c.State.Nodes {
		if err := c.registerNode(ctx, n); err != nil {
			return c, err
		}
	}
	if err := c.startPalisadeProcesses(&cfg); err != nil {
		return c, err
	}
	cfg.Log("cluster up after %s", time.Since(start).Round(100*time.Millisecond))
	return c, nil
}

// startPalisadeProcesses starts, unless cfg turns them off, the API proxy
// and an agent per node, then the controller, and waits for the agents to
// be ready: the controller starts before that wait so the two overlap.
func (c *Cluster) startPalisadeProcesses(cfg *Config) error {
	if !cfg.NoAgents {
		cfg.Log("starting agents (backend %s)", cfg.Backend)
		if err := c.startAPIProxy(); err != nil {
			return err
		}
		for _, n := range c.State.Nodes {
			if err := c.startAgent(n); err != nil {
				return err
			}
		}
	}
	if !cfg.NoController {
		cfg.Log("starting the controller")
		if err := c.startController(); err != nil {
			return err
		}
	}
	if !cfg.NoAgents {
		return c.WaitAgentsReady(60 * time.Second)
	}
	return nil
}

// Down removes everything the cluster in dir made: processes, network
// namespaces (with their veths, routes and nft tables), files. It is safe to
// run twice, and on a half-made cluster.
func Down(dir string) error {
	c := &Cluster{Dir: dir, log: func(string, ...any) {}}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return c.Down()
}

// Down tears the cluster down (see the package function Down).
func (c *Cluster) Down() error {
	var errs []error
	// Processes in our namespaces first (agents, pod servers), then the
	// ones in the root namespace, API server last but one, etcd last.
	nss := c.recordedNetns()
	for _, ns := range nss {
		killNetnsProcesses(ns)
	}
	errs = append(errs, c.downRealNodes())
	entries, _ := os.ReadDir(filepath.Join(c.Dir, "pids"))
	last := map[string]bool{"kube-apiserver": true, "etcd": true}
	for _, e := range entries {
		name := trimExt(e.Name())
		if !last[name] {
			errs = append(errs, c.stopProcess(name, 5*time.Second))
		}
	}
	errs = append(errs, c.stopProcess("kube-apiserver", 10*time.Second), c.stopProcess("etcd", 10*time.Second))
	// Pods before nodes before the fabric: deleting a pod's namespace
	// deletes its veth, deleting a node's deletes its routes and tables.
	for i := len(nss) - 1; i >= 0; i-- {
		errs = append(errs, netns.Delete(nss[i]))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", c.Dir, err)
	}
	return nil
}

func trimExt(name string) string { return name[:len(name)-len(filepath.Ext(name))] }
