package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/localcluster"
)

// bringUpRealNodes starts a cluster whose nodes run kubelet, containerd and
// kube-proxy, and deploys Palisade from config/ as images.
func bringUpRealNodes(ctx context.Context, o upOptions) (*localcluster.Cluster, error) {
	root := repoRoot()
	return localcluster.UpRealNodes(ctx, localcluster.Config{
		Dir:          stateDir(),
		Prefix:       "palisade",
		Nodes:        o.nodes,
		Backend:      o.backend,
		BinDir:       filepath.Join(root, "bin"),
		AssetsDir:    kubeassets.Dir(),
		ConfigDir:    filepath.Join(root, "config"),
		NoController: o.noController,
		Log:          logf,
	})
}

func printRealNodesUsage(c *localcluster.Cluster) {
	fmt.Printf(`Use the cluster:
  export KUBECONFIG=%s
  kubectl get nodes,pods -A -o wide
  make demo-down    # removes everything
`, c.KubeconfigPath())
}
