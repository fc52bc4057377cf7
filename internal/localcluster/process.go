package localcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/palisade-dev/palisade/internal/netns"
)

// The cluster's processes (etcd, kube-apiserver, controller, agents, the API
// proxy, pod servers) outlive the command that starts them, so each runs in a
// session of its own and is remembered by a pid file that also holds the
// program's path: stopProcess only signals a pid whose command line still
// names that program, never a recycled pid.

func (c *Cluster) pidFile(name string) string { return filepath.Join(c.Dir, "pids", name+".pid") }
func (c *Cluster) logFile(name string) string { return filepath.Join(c.Dir, "logs", name+".log") }

// startProcess starts args (in network namespace ns when set) detached, with
// output to logs/<name>.log.
func (c *Cluster) startProcess(name, ns string, args ...string) (int, error) {
	for _, d := range []string{"pids", "logs"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return 0, err
		}
	}
	logf, err := os.OpenFile(c.logFile(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer func() { _ = logf.Close() }()
	cmd := exec.Command(args[0], args[1:]...)
	if ns != "" {
		cmd = netns.Command(ns, args...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	// Reap it when it exits while we are still running (the e2e suite).
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(c.pidFile(name), []byte(fmt.Sprintf("%d\n%s\n", pid, args[0])), 0o644); err != nil {
		return pid, err
	}
	return pid, nil
}

// processAlive reports whether pid runs program (and is not a zombie).
func processAlive(pid int, program string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name: "pid (comm) S ...".
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	if len(cmdline) == 0 {
		// Briefly empty while the process execs (`ip netns exec` becoming
		// the program): alive.
		return true
	}
	for _, a := range strings.Split(string(cmdline), "\x00") {
		if a == program {
			return true
		}
	}
	return false
}

func readPidFile(path string) (int, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", err
	}
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	if len(lines) != 2 {
		return 0, "", fmt.Errorf("malformed pid file %s", path)
	}
	pid, err := strconv.Atoi(lines[0])
	return pid, lines[1], err
}

// stopProcess sends SIGTERM, then SIGKILL after grace, to the process a pid
// file names, and removes the pid file. A missing file is not an error.
func (c *Cluster) stopProcess(name string, grace time.Duration) error {
	path := c.pidFile(name)
	pid, program, err := readPidFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if processAlive(pid, program) {
		terminate(pid, program, grace)
	}
	return os.Remove(path)
}

func terminate(pid int, program string, grace time.Duration) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	awaitExit(pid, program, grace)
}

// awaitExit waits until the process has exited, sending SIGKILL after grace.
func awaitExit(pid int, program string, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !processAlive(pid, program) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && processAlive(pid, program); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// processRunning reports whether the process of a pid file is up.
func (c *Cluster) processRunning(name string) bool {
	pid, program, err := readPidFile(c.pidFile(name))
	return err == nil && processAlive(pid, program)
}

// killNetnsProcesses kills whatever still runs in one of our namespaces
// (all of it was started by this harness).
func killNetnsProcesses(ns string) {
	for _, pid := range netns.PIDs(ns) {
		if pid == os.Getpid() {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Process is one of the cluster's processes, known by the name of its pid
// file (etcd, kube-apiserver, controller, apiproxy, agent-node-1, ...), for
// tests that signal, stop and restart it.
type Process struct {
	c    *Cluster
	Name string
	// Netns is the network namespace it runs in ("" for the root one).
	Netns string
}

// Process returns the process whose pid file is name, running in netns.
func (c *Cluster) Process(name, netns string) Process {
	return Process{c: c, Name: name, Netns: netns}
}

// AgentProcess is the agent of node n.
func (c *Cluster) AgentProcess(n NodeState) Process { return c.Process(c.agentName(n), n.Netns) }

// PID reads the process's pid file: its pid and program.
func (p Process) PID() (int, string, error) { return readPidFile(p.c.pidFile(p.Name)) }

// Alive reports whether the process runs.
func (p Process) Alive() bool { return p.c.processRunning(p.Name) }

// LogFile is where the process's output goes, across restarts.
func (p Process) LogFile() string { return p.c.logFile(p.Name) }

// Signal sends sig to the process.
func (p Process) Signal(sig syscall.Signal) error {
	pid, _, err := p.PID()
	if err != nil {
		return err
	}
	return syscall.Kill(pid, sig)
}

// Stop sends sig and waits until the process has exited (SIGKILL after
// 10s). Its pid file stays, for Start to rewrite.
func (p Process) Stop(sig syscall.Signal) error {
	pid, program, err := p.PID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return err
	}
	awaitExit(pid, program, 10*time.Second)
	return nil
}

// Start runs argv as the process, detached like the cluster starts it, in
// its namespace, and rewrites its pid file.
func (p Process) Start(argv ...string) error {
	_, err := p.c.startProcess(p.Name, p.Netns, argv...)
	return err
}
