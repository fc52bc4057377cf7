package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	vnetns "github.com/vishvananda/netns"
)

// Do runs fn on an OS thread that has entered the namespace. Sockets fn
// opens stay in the namespace after it returns, and processes it starts
// (os/exec forks from the calling thread) run in it.
func (ns *NS) Do(fn func() error) error {
	return onThread(ns.Name, func() error {
		if err := vnetns.Set(vnetns.NsHandle(ns.Fd)); err != nil {
			return fmt.Errorf("enter netns %s: %w", ns.Name, err)
		}
		return fn()
	})
}

// Do runs fn inside the named namespace, as NS.Do does.
func Do(name string, fn func() error) error {
	ns, err := Open(name)
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	return ns.Do(fn)
}

// onThread runs fn on a locked OS thread, which fn may move into another
// namespace (name, for errors), and then returns the thread to its own. fn
// runs on a goroutine of its own: if the thread cannot be switched back, the
// goroutine exits still locked and the Go runtime discards the thread, so no
// other goroutine ever runs in the wrong namespace.
func onThread(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer func() { _ = orig.Close() }()
		ferr := fn()
		if err := vnetns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", name, err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Sysctl writes a sysctl under /proc/sys inside the namespace; the net
// sysctls are per network namespace and resolved for the writing thread.
func (ns *NS) Sysctl(key, value string) error {
	return ns.Do(func() error {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, ns.Name, err)
		}
		return nil
	})
}

// Dial opens a TCP connection from inside the named namespace, e.g. to a
// server that listens on that namespace's loopback.
func Dial(ctx context.Context, name, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(name, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}
