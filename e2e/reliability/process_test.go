//go:build reliability

package reliability

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/internal/localcluster"
)

// The local cluster starts every process of the cluster detached, with a pid
// file <dir>/pids/<name>.pid holding the pid and the program, and its log in
// <dir>/logs/<name>.log. The scenarios signal those processes directly and
// start them again with the command line /proc recorded, in the same
// network namespace, writing the pid file localcluster.Down reads.

type proc struct {
	c    *localcluster.Cluster
	name string // pid file name: agent-node-1, kube-apiserver, controller
	ns   string // network namespace it runs in ("" for the root one)
}

func (p proc) pidFile() string { return filepath.Join(p.c.Dir, "pids", p.name+".pid") }

func (p proc) pid() (int, string, error) {
	b, err := os.ReadFile(p.pidFile())
	if err != nil {
		return 0, "", err
	}
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	if len(lines) != 2 {
		return 0, "", fmt.Errorf("malformed pid file %s", p.pidFile())
	}
	pid, err := strconv.Atoi(lines[0])
	return pid, lines[1], err
}

// cmdline returns the process's argv.
func (p proc) cmdline() ([]string, error) {
	b, err := p.procFile("cmdline")
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// procFile reads /proc/<pid>/<name> of the process.
func (p proc) procFile(name string) ([]byte, error) {
	pid, _, err := p.pid()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
}

func (p proc) alive() bool {
	stat, err := p.procFile("stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

func (p proc) signal(sig syscall.Signal) error {
	pid, _, err := p.pid()
	if err != nil {
		return err
	}
	return syscall.Kill(pid, sig)
}

// stop sends sig and waits until the process is gone (SIGKILL after 10s).
func (p proc) stop(sig syscall.Signal) error {
	if err := p.signal(sig); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); p.alive(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = p.signal(syscall.SIGKILL)
		}
	}
	return nil
}

// start runs argv detached like the local cluster does and records its pid.
func (p proc) start(argv []string) error {
	logf, err := os.OpenFile(filepath.Join(p.c.Dir, "logs", p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	full := argv
	if p.ns != "" {
		full = append([]string{"ip", "netns", "exec", p.ns}, argv...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	go func() { _ = cmd.Wait() }()
	return os.WriteFile(p.pidFile(), []byte(fmt.Sprintf("%d\n%s\n", cmd.Process.Pid, argv[0])), 0o644)
}

// rssKiB reads VmRSS of the process.
func (p proc) rssKiB() int {
	b, err := p.procFile("status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// cpuSeconds reads the process's user+system CPU time from /proc (fields 14
// and 15 of stat, in clock ticks of 1/100 s on Linux).
func (p proc) cpuSeconds() float64 {
	stat, err := p.procFile("stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	// After ")": state is field 3, so utime (14) and stime (15) are at
	// offsets 11 and 12.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}

// log is what the process logged so far (all its runs).
func (p proc) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.c.Dir, "logs", p.name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
