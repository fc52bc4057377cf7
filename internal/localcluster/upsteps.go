package localcluster

import (
	"errors"
	"fmt"
	"path/filepath"
)

// downOnError tears a half-made cluster down when an up fails, so a failed
// up leaves no processes, namespaces or files for the next up to trip over;
// a failed teardown's error joins the up's. Up and UpRealNodes defer it over
// their named results: defer downOnError(&c, &err).
func downOnError(c **Cluster, err *error) {
	if *err == nil || *c == nil {
		return
	}
	if derr := (*c).Down(); derr != nil {
		*err = errors.Join(*err, fmt.Errorf("clean up after failed up: %w", derr))
	}
	*c = nil
}

// createNodes makes the fabric and total nodes, and saves them to the state
// file so down finds them however up ends. With linkToHost (real nodes) the
// host gets an address on the fabric, where the API server listens, and
// routes to each node's pods.
func (c *Cluster) createNodes(total int, linkToHost bool) error {
	if err := c.createFabric(); err != nil {
		return err
	}
	if linkToHost {
		if err := c.createHostLink(); err != nil {
			return err
		}
	}
	for i := 1; i <= total; i++ {
		n, err := c.createNode(i, total)
		if err != nil {
			return err
		}
		c.State.Nodes = append(c.State.Nodes, n)
		if linkToHost {
			if err := c.linkNodeToHost(n); err != nil {
				return err
			}
		}
	}
	return c.saveState()
}

// startEtcdAndAPIServer makes the cluster's PKI and starts etcd and
// kube-apiserver (listening on host, with modeArgs), without waiting for the
// API server: callers build the rest meanwhile, then waitAPIServer.
func (c *Cluster) startEtcdAndAPIServer(cfg *Config, host string, modeArgs func(*pki) []string) (*pki, error) {
	p, err := generatePKI(filepath.Join(cfg.Dir, "pki"))
	if err != nil {
		return nil, err
	}
	if err := c.startEtcd(cfg.AssetsDir); err != nil {
		return nil, err
	}
	if err := c.startAPIServer(cfg.AssetsDir, p, host, modeArgs(p)); err != nil {
		return nil, err
	}
	return p, nil
}
