package localcluster

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// downRealNodes removes what real nodes leave outside their namespaces and
// the state directory, once the processes in the node namespaces are dead:
// the containers (found by cgroup: their shims died with the node) and the
// nodes' cgroup roots, the kubelets' machine-wide sysctls, and the host
// paths nodes mounted over if up created them. The nodes' mounts need nothing: they lived in the nodes' own mount
// namespaces, which went with their last process.
func (c *Cluster) downRealNodes() error {
	st := c.State
	if st.Prefix == "" {
		b, err := os.ReadFile(c.statePath())
		if err != nil {
			return nil // nothing was made
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return err
		}
	}
	if !st.RealNodes {
		return nil
	}
	var errs []error
	for _, n := range st.Nodes {
		errs = append(errs, removeCgroupRoot("/"+st.Prefix+"-"+n.Name))
	}
	errs = append(errs, c.restoreKernelTunables())
	if b, err := os.ReadFile(filepath.Join(c.Dir, "host-paths-created")); err == nil {
		for _, p := range strings.Fields(string(b)) {
			// Directories only when empty: something else may use them now.
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
