package localcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kubeletKernelTunables are the machine-wide sysctls a kubelet sets at start
// when protectKernelDefaults is false (pkg/kubelet/cm, setupKernelTunables);
// with it true the kubelet refuses to start unless they already hold its
// values. They are not per network namespace, so up saves them and down
// puts them back.
var kubeletKernelTunables = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

func (c *Cluster) savedSysctlsPath() string { return filepath.Join(c.Dir, "host-sysctls") }

// saveKernelTunables records the tunables' values before any kubelet runs.
func (c *Cluster) saveKernelTunables() error {
	var lines []string
	for _, k := range kubeletKernelTunables {
		v, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			return fmt.Errorf("read sysctl %s: %w", k, err)
		}
		lines = append(lines, k+"="+strings.TrimSpace(string(v)))
	}
	return os.WriteFile(c.savedSysctlsPath(), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// restoreKernelTunables writes back what saveKernelTunables recorded.
func (c *Cluster) restoreKernelTunables() error {
	b, err := os.ReadFile(c.savedSysctlsPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, line := range strings.Fields(string(b)) {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}
