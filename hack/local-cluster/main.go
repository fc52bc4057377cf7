// Command local-cluster runs a Kubernetes cluster made of a real API server
// and network namespaces on this machine (root needed). See README.md here.
//
//	local-cluster up [--nodes N] [--layout netpol] [--backend nftables|iptables] [--real-nodes]
//	local-cluster status
//	local-cluster pod create NS/NAME [--node node-1] [--label k=v]... [--port name:80/TCP]...
//	local-cluster pod delete NS/NAME
//	local-cluster demo [--simulated] [--nodes N] [--backend nftables|iptables]
//	local-cluster down
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/localcluster"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	// The API clients log through controller-runtime; the CLI reports itself.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "up":
		err = up(ctx, args)
	case "down":
		err = localcluster.Down(stateDir())
		if err == nil {
			fmt.Println("local cluster removed")
		}
	case "status":
		err = status(ctx)
	case "pod":
		err = pod(ctx, args)
	case "demo":
		err = demo(ctx, args)
	case "apiproxy":
		err = apiproxy(ctx, args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "local-cluster:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: local-cluster <command>
  up [--nodes N] [--layout netpol] [--backend nftables|iptables] [--real-nodes]
  status
  pod create NS/NAME [--node node-1] [--label k=v]... [--port [name:]80[/TCP]]...
  pod delete NS/NAME
  demo [--simulated] [--nodes N] [--backend nftables|iptables]
  down
`)
	os.Exit(2)
}

func repoRoot() string { return kubeassets.RepoRoot() }

// stateDir is .local-cluster in the repository (git-ignored), or
// $LOCAL_CLUSTER_DIR.
func stateDir() string {
	if d := os.Getenv("LOCAL_CLUSTER_DIR"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(), ".local-cluster")
}

func logf(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

type upOptions struct {
	nodes                  int
	layout, backend        string
	noAgents, noController bool
	realNodes              bool
}

func parseUp(args []string) upOptions {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	var o upOptions
	fs.IntVar(&o.nodes, "nodes", 2, "number of nodes")
	fs.StringVar(&o.layout, "layout", "", "deploy a pod layout: netpol")
	fs.StringVar(&o.backend, "backend", "nftables", "agent backend: nftables or iptables")
	fs.BoolVar(&o.noAgents, "no-agents", false, "do not run agents (harness development)")
	fs.BoolVar(&o.noController, "no-controller", false, "do not run the controller (harness development)")
	fs.BoolVar(&o.realNodes, "real-nodes", false, "run kubelet, containerd and kube-proxy per node and Palisade as images (hack/setup-real-nodes.sh first)")
	_ = fs.Parse(args)
	return o
}

func up(ctx context.Context, args []string) error {
	o := parseUp(args)
	if o.layout != "" && o.layout != "netpol" {
		return fmt.Errorf("unknown layout %q (want netpol)", o.layout)
	}
	if o.realNodes && o.layout != "" {
		return fmt.Errorf("--layout is for simulated nodes")
	}
	c, err := bringUp(ctx, o)
	if err != nil {
		return err
	}
	if o.realNodes {
		printRealNodesUsage(c)
		return nil
	}
	if o.layout == "netpol" {
		logf("deploying the netpol layout (x, y, z × a, b, c)")
		if _, err := c.DeployNetpolLayout(ctx); err != nil {
			return err
		}
	}
	if err := printStatus(ctx, c); err != nil {
		return err
	}
	printUsage(c)
	return nil
}

func clusterConfig(o upOptions) localcluster.Config {
	root := repoRoot()
	return localcluster.Config{
		Dir:          stateDir(),
		Prefix:       "palisade",
		Nodes:        o.nodes,
		Backend:      o.backend,
		BinDir:       filepath.Join(root, "bin"),
		AssetsDir:    kubeassets.Dir(),
		CRDDir:       filepath.Join(root, "config", "crd", "bases"),
		ConfigDir:    filepath.Join(root, "config"),
		NoAgents:     o.noAgents,
		NoController: o.noController,
		Log:          logf,
	}
}

func bringUp(ctx context.Context, o upOptions) (*localcluster.Cluster, error) {
	if o.realNodes {
		// Real nodes run Palisade (and CoreDNS) as pods.
		return localcluster.UpRealNodes(ctx, clusterConfig(o))
	}
	c, err := localcluster.Up(ctx, clusterConfig(o))
	if err != nil {
		return nil, err
	}
	logf("deploying cluster-dns")
	if _, err := c.DeployClusterDNS(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func status(ctx context.Context) error {
	c, err := localcluster.Load(stateDir())
	if err != nil {
		return err
	}
	return printStatus(ctx, c)
}

func printStatus(ctx context.Context, c *localcluster.Cluster) error {
	if err := c.Healthy(ctx); err != nil {
		return fmt.Errorf("%w (make demo-down removes what is left)", err)
	}
	fmt.Printf("\nkubeconfig: %s   backend: %s\n\nNODE\tNETNS\tIP\tPOD CIDR\n", c.KubeconfigPath(), c.State.Backend)
	for _, n := range c.State.Nodes {
		fmt.Printf("%s\t%s\t%s\t%s\n", n.Name, n.Netns, n.IP, n.PodCIDR)
	}
	pods, err := c.Pods(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("\nPOD\tNODE\tIP\tNETNS\n")
	for _, p := range pods {
		fmt.Printf("%s\t%s\t%s\t%s\n", p.Key(), p.Node, p.IP, p.Netns)
	}
	fmt.Println()
	return nil
}

func printUsage(c *localcluster.Cluster) {
	fmt.Printf(`Use the cluster:
  export KUBECONFIG=%s
  kubectl get nodes,pods -A -o wide
  ip netns exec %s bin/podserver probe --proto tcp --addr <pod-ip>:80
  ip netns exec %s nft list table inet palisade
  make demo-down    # removes everything
`, c.KubeconfigPath(), c.PodNetns("x", "a"), c.State.Nodes[0].Netns)
}

func pod(ctx context.Context, args []string) error {
	if len(args) < 2 || (args[0] != "create" && args[0] != "delete") {
		return fmt.Errorf("usage: pod create|delete NS/NAME [flags]")
	}
	ns, name, ok := strings.Cut(args[1], "/")
	if !ok {
		return fmt.Errorf("pod must be NS/NAME, got %q", args[1])
	}
	c, err := localcluster.Load(stateDir())
	if err != nil {
		return err
	}
	if args[0] == "delete" {
		return c.DeletePod(ctx, ns, name)
	}
	spec, err := parsePodFlags(ns, name, args[2:])
	if err != nil {
		return err
	}
	p, err := c.CreatePod(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Printf("pod %s on %s: ip %s, netns %s\n", p.Key(), p.Node, p.IP, p.Netns)
	return nil
}

func apiproxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("apiproxy", flag.ExitOnError)
	target := fs.String("target", "", "address to forward to (root namespace)")
	listen := fs.String("listen", "", "address to listen on in each namespace")
	nss := fs.String("netns", "", "comma-separated namespaces")
	_ = fs.Parse(args)
	return localcluster.RunAPIProxy(ctx, *target, *listen, strings.Split(*nss, ","))
}
