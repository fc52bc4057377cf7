package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/palisade-dev/palisade/internal/localcluster"
)

// demo brings the cluster up (or reuses the running one), runs the shop demo
// and tells the user how to go on.
func demo(ctx context.Context, args []string) error {
	start := time.Now()
	c, err := localcluster.Load(stateDir())
	if err == nil {
		if c.State.RealNodes {
			return fmt.Errorf("the cluster in %s has real nodes; the demo runs on simulated ones (make demo-down first)", stateDir())
		}
		if herr := c.Healthy(ctx); herr != nil {
			return fmt.Errorf("%w; remove the stale cluster with make demo-down", herr)
		}
		logf("reusing the running local cluster in %s", stateDir())
		c.SetLogger(logf)
	} else {
		if c, err = bringUp(ctx, parseUp(args)); err != nil {
			return err
		}
	}
	_, err = localcluster.RunDemo(ctx, c, repoRoot(), os.Stdout)
	ordersIP := "<orders-ip>"
	if pods, perr := c.Pods(ctx); perr == nil {
		for _, p := range pods {
			if p.Key() == "shop/orders" {
				ordersIP = p.IP.String()
			}
		}
	}
	fmt.Printf("\ndemo took %s\n\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Printf(`Use the cluster:
  export KUBECONFIG=%s
  kubectl get serviceintents -A
  kubectl get networkpolicies -n shop -o yaml
  bin/local-cluster status                          # nodes, pods, their network namespaces
  ip netns exec %s bin/podserver probe --proto tcp --addr %s:8080
  ip netns exec %s nft list table inet palisade     # what the agent programs
  make demo-down                                    # removes everything
`, c.KubeconfigPath(), c.PodNetns("shop", "coupon-bot"), ordersIP, c.State.Nodes[0].Netns)
	return err
}
