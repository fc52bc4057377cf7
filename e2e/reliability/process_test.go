//go:build reliability

package reliability

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/internal/localcluster"
)

// proc is a process of the local cluster (localcluster.Process: its pid
// file, signals, restarts) and what the scenarios read of it in /proc.
type proc struct {
	localcluster.Process
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
	pid, _, err := p.PID()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
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
	b, err := os.ReadFile(p.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
