package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// PIDs lists the processes running in a named namespace (like
// `ip netns pids`).
func PIDs(name string) []int {
	target, err := os.Stat(filepath.Join(Dir, name))
	if err != nil {
		return nil
	}
	want, ok := inode(target)
	if !ok {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		fi, err := os.Stat(filepath.Join("/proc", e.Name(), "ns", "net"))
		if err != nil {
			continue
		}
		if ino, ok := inode(fi); ok && ino == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

func inode(fi os.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Ino, true
}
