package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on an OS thread that has entered the named network
// namespace. Sockets fn creates stay in that namespace after it returns.
//
// fn runs on a goroutine of its own: if the thread cannot be switched back,
// the goroutine exits still locked and the Go runtime discards the thread,
// so no other goroutine ever runs in the wrong namespace.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer func() { _ = orig.Close() }()
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", name, err)
			return
		}
		defer func() { _ = target.Close() }()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", name, err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// createNetns creates a named network namespace (as `ip netns add` does) with
// its loopback up.
func createNetns(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer func() { _ = orig.Close() }()
		h, err := netns.NewNamed(name) // also moves this thread into it
		if err != nil {
			if serr := netns.Set(orig); serr != nil {
				errc <- errors.Join(err, serr)
				return
			}
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("create netns %s: %w", name, err)
			return
		}
		_ = h.Close()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave new netns %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return err
	}
	return inNetns(name, func() error { return linkUp("lo") })
}

func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/var/run/netns", name))
	return err == nil
}

// deleteNetns removes a named namespace; a missing one is not an error.
func deleteNetns(name string) error {
	if !netnsExists(name) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// setSysctl writes a sysctl under /proc/sys inside a namespace; the net
// sysctls are per network namespace and resolved for the writing thread.
func setSysctl(ns, key, value string) error {
	return inNetns(ns, func() error {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, ns, err)
		}
		return nil
	})
}

// dialInNetns opens a TCP connection from inside a namespace; it is how the
// harness reaches the agents' health endpoints, which listen on their node's
// loopback.
func dialInNetns(ctx context.Context, ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// netnsPIDs lists the processes running in a named namespace (like
// `ip netns pids`): every one of them was started by this harness.
func netnsPIDs(name string) []int {
	target, err := os.Stat(filepath.Join("/var/run/netns", name))
	if err != nil {
		return nil
	}
	tst, ok := statIno(target)
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
		if ino, ok := statIno(fi); ok && ino == tst {
			pids = append(pids, pid)
		}
	}
	return pids
}
