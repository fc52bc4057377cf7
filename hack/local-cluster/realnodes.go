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
