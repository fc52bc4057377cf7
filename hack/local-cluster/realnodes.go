package main

import (
	"fmt"

	"github.com/palisade-dev/palisade/internal/localcluster"
)

func printRealNodesUsage(c *localcluster.Cluster) {
	fmt.Printf(`Use the cluster:
  export KUBECONFIG=%s
  kubectl get nodes,pods -A -o wide
  make demo-down    # removes everything
`, c.KubeconfigPath())
}

func printRealNodesDemoUsage(c *localcluster.Cluster) {
	alias := ""
	if k := localcluster.KubectlPath(); k != "kubectl" {
		alias = "\n  alias kubectl=" + k
	}
	fmt.Printf(`Use the cluster (make demo again reuses it):
  export KUBECONFIG=%s%s
  kubectl get pods -A -o wide
  kubectl describe si -n shop orders                                                  # who calls orders, who was turned away
  kubectl exec -n shop deploy/checkout -- /podserver probe --addr orders.shop:8080    # allowed: prints the pod that answered
  kubectl exec -n shop deploy/coupon-bot -- /podserver probe --addr orders.shop:8080  # blocked
  kubectl get networkpolicies -n shop -o yaml
  kubectl logs -n palisade-system ds/palisade-agent
  ip netns exec %s nft list table inet palisade                          # what the agent programs on node-1
  make demo-down                                                                      # removes everything
`, c.KubeconfigPath(), alias, c.State.Nodes[0].Netns)
}
