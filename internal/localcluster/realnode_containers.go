package localcluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ContainerPID is the host PID of a running container's first process, as
// the node's containerd reports it (`ctr tasks ls` in the namespace the CRI
// plugin serves). The nodes share the host's PID namespace, so the PID is
// good for kill(2) and /proc/<pid>/ns/net from the host.
func (c *Cluster) ContainerPID(ctx context.Context, node string, status corev1.ContainerStatus) (int, error) {
	n, ok := c.Node(node)
	if !ok {
		return 0, fmt.Errorf("no node %q", node)
	}
	id, ok := strings.CutPrefix(status.ContainerID, "containerd://")
	if !ok {
		return 0, fmt.Errorf("container %s has no containerd ID (%q): not started", status.Name, status.ContainerID)
	}
	out, err := exec.CommandContext(ctx, "ctr", "--address", c.containerdSocket(n), "-n", "k8s.io", "tasks", "ls").Output()
	if err != nil {
		return 0, fmt.Errorf("ctr tasks ls on %s: %w", node, err)
	}
	// TASK  PID  STATUS
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != id {
			continue
		}
		if f[2] != "RUNNING" {
			return 0, fmt.Errorf("container %s on %s is %s", status.Name, node, f[2])
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil {
			return 0, fmt.Errorf("ctr tasks ls on %s: pid %q: %w", node, f[1], err)
		}
		return pid, nil
	}
	return 0, fmt.Errorf("container %s (%s) has no task on %s", status.Name, id, node)
}
