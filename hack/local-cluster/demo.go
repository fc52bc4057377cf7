package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/palisade-dev/palisade/internal/localcluster"
)

// demo brings a real-node cluster up (or reuses the running one), runs the
// shop demo and tells the user how to go on. With --simulated it runs on
// simulated nodes instead (pods are network namespaces).
func demo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	var o upOptions
	fs.IntVar(&o.nodes, "nodes", 2, "number of nodes of a new cluster")
	fs.StringVar(&o.backend, "backend", "nftables", "agent backend of a new cluster: nftables or iptables")
	simulated := fs.Bool("simulated", false, "run on simulated nodes (pods are network namespaces, the cluster plays the kubelet)")
	_ = fs.Parse(args)
	o.realNodes = !*simulated
	start := time.Now()
	c, err := demoCluster(ctx, o)
	if err != nil {
		return err
	}
	_, err = localcluster.RunDemo(ctx, c, repoRoot(), os.Stdout)
	fmt.Printf("\ndemo took %s\n\n", time.Since(start).Round(100*time.Millisecond))
	if c.State.RealNodes {
		printRealNodesDemoUsage(c)
	} else {
		printSimulatedDemoUsage(ctx, c)
	}
	return err
}

// demoCluster returns the running cluster in the state directory when it is
// healthy and of the kind asked for, or brings one up.
func demoCluster(ctx context.Context, o upOptions) (*localcluster.Cluster, error) {
	realNodes := o.realNodes
	c, err := localcluster.Load(stateDir())
	if err != nil {
		return bringUp(ctx, o)
	}
	kind := map[bool]string{true: "real", false: "simulated"}
	if c.State.RealNodes != realNodes {
		return nil, fmt.Errorf("the cluster in %s has %s nodes and this demo runs on %s ones (make demo-down first)",
			stateDir(), kind[c.State.RealNodes], kind[realNodes])
	}
	herr := c.Healthy(ctx)
	if herr == nil && realNodes {
		herr = c.WaitRealNodesReady(ctx, 30*time.Second)
	}
	if herr != nil {
		return nil, fmt.Errorf("%w; remove the stale cluster with make demo-down", herr)
	}
	logf("reusing the running local cluster in %s (%s nodes)", stateDir(), kind[realNodes])
	c.SetLogger(logf)
	return c, nil
}

func printSimulatedDemoUsage(ctx context.Context, c *localcluster.Cluster) {
	ordersIP := "<orders-ip>"
	if pods, perr := c.Pods(ctx); perr == nil {
		for _, p := range pods {
			if p.Key() == "shop/orders" {
				ordersIP = p.IP.String()
			}
		}
	}
	fmt.Printf(`Use the cluster:
  export KUBECONFIG=%s
  kubectl get serviceintents -A
  kubectl get networkpolicies -n shop -o yaml
  bin/local-cluster status                          # nodes, pods, their network namespaces
  ip netns exec %s bin/podserver probe --proto tcp --addr %s:8080
  ip netns exec %s nft list table inet palisade     # what the agent programs
  make demo-down                                    # removes everything
`, c.KubeconfigPath(), c.PodNetns("shop", "coupon-bot"), ordersIP, c.State.Nodes[0].Netns)
}
