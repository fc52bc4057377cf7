package localcluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupMount is where the host mounts its cgroup hierarchies (v1 controllers
// each in a directory, or one cgroup2 tree: both are handled alike).
const cgroupMount = "/sys/fs/cgroup"

// cgroupHierarchies are the mounted hierarchies: the directories under
// cgroupMount holding a cgroup.procs file, or cgroupMount itself (cgroup2).
func cgroupHierarchies() []string {
	if _, err := os.Stat(filepath.Join(cgroupMount, "cgroup.procs")); err == nil {
		return []string{cgroupMount}
	}
	entries, _ := os.ReadDir(cgroupMount)
	var out []string
	for _, e := range entries {
		dir := filepath.Join(cgroupMount, e.Name())
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			continue // cpu -> cpu,cpuacct symlinks
		}
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
			out = append(out, dir)
		}
	}
	return out
}

// createCgroupRoot makes a node's cgroupRoot in every hierarchy: the kubelet
// (cgroupfs driver) refuses to start when it is missing in any. In the
// cpuset hierarchy a new cgroup starts with no CPUs and no memory nodes, so
// they are copied from the parent.
func createCgroupRoot(root string) error {
	for _, h := range cgroupHierarchies() {
		dir := filepath.Join(h, root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			parent, err := os.ReadFile(filepath.Join(h, f))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, f), parent, 0o644); err != nil {
				return fmt.Errorf("set %s of %s: %w", f, dir, err)
			}
		}
	}
	return nil
}

// removeCgroupRoot kills every process left below root (the containers,
// whose runc shims are already gone) and removes root and everything below
// it from every hierarchy, deepest first.
func removeCgroupRoot(root string) error {
	var dirs []string
	for _, h := range cgroupHierarchies() {
		base := filepath.Join(h, root)
		_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	if len(dirs) == 0 {
		return nil
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	return waitFor(30*time.Second, "the processes under cgroup "+root+" to exit", func() error {
		var errs []error
		for _, d := range dirs {
			for _, pid := range cgroupPIDs(d) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
		return errors.Join(errs...)
	})
}

func cgroupPIDs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
