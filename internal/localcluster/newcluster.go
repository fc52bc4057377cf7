package localcluster

import (
	"errors"
	"fmt"
	"os"
)

// newCluster checks cfg (filling in defaults), claims cfg.Dir for a new
// cluster with state st, picks a free port for each of ports(st) and
// records the state.
func newCluster(cfg *Config, st State, ports func(*State) []*int) (*Cluster, error) {
	if os.Geteuid() != 0 {
		return nil, errNotRoot
	}
	if cfg.Nodes < 1 || cfg.Nodes > 9 {
		return nil, fmt.Errorf("nodes must be 1-9, got %d", cfg.Nodes)
	}
	if cfg.Prefix == "" || cfg.Dir == "" {
		return nil, errors.New("prefix and dir are required")
	}
	if cfg.Backend == "" {
		cfg.Backend = "nftables"
		st.Backend = cfg.Backend
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	c := &Cluster{Dir: cfg.Dir, log: cfg.Log, State: st}
	if _, statErr := os.Stat(c.statePath()); statErr == nil {
		return nil, fmt.Errorf("a local cluster already exists in %s: run down first", cfg.Dir)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	for _, p := range ports(&c.State) {
		var err error
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	if err := c.saveState(); err != nil {
		return nil, err
	}
	return c, nil
}
