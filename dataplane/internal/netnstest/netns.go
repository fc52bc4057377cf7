// Package netnstest creates network namespaces for the dataplane's kernel
// tests: "node" namespaces with routed "pod" namespaces behind them, the way
// a routed CNI (Calico, ptp) wires pods, plus servers and probes that make
// real connections between them, and the firewall's state as text
// (ruleset.go) for tests that compare it. Every name starts with "pdt-"
// and every address lies in 10.100.0.0/16 or fd00:100::/48; everything is
// removed when the test ends. NewPrefixed and NewNodePrefixed use another
// prefix.
package netnstest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netns"
)

var seq atomic.Int64

// NS is a named network namespace.
type NS struct {
	Name string
	// Fd is an open handle on the namespace.
	Fd int
}

// DefaultPrefix starts the names of namespaces made by New and NewNode.
const DefaultPrefix = "pdt"

// New creates a namespace named pdt-<short>-<pid>-<n>, removed at cleanup.
func New(t testing.TB, short string) *NS {
	t.Helper()
	return NewPrefixed(t, DefaultPrefix, short)
}

// NewPrefixed is New with another name prefix, for tests that must not
// share names with others running at the same time.
func NewPrefixed(t testing.TB, prefix, short string) *NS {
	t.Helper()
	name := fmt.Sprintf("%s-%s-%d-%d", prefix, short, os.Getpid()%100000, seq.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	ns := &NS{Name: name, Fd: int(f.Fd())}
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command inside the namespace and returns its output; it fails
// the test on error.
func (ns *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", ns.Name}, args...)...)
}

// Try runs a command inside the namespace and returns output and error.
func (ns *NS) Try(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Do runs fn on an OS thread that has entered the namespace. Sockets fn
// opens stay in the namespace after it returns, and processes it starts
// (os/exec forks from the calling thread) run in it.
//
// fn runs on a goroutine of its own: if the thread cannot be switched back,
// the goroutine exits still locked and the Go runtime discards the thread,
// so no other goroutine ever runs in the wrong namespace.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(netns.NsHandle(ns.Fd)); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", ns.Name, err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Sysctl writes a sysctl inside the namespace (net.* sysctls are per
// namespace, resolved for the writing thread).
func (ns *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	err := ns.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("sysctl %s=%s in %s: %v", key, value, ns.Name, err)
	}
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
