// Package netns creates, enters and removes named network namespaces (the
// ones iproute2 keeps under /var/run/netns), and wires them the way a routed
// CNI (Calico, ptp) wires pods: see routed.go. The kernel tests, the
// benchmarks and the local cluster all build their nodes and pods with it;
// each names its namespaces with a prefix of its own, so that they never
// share a name when they run at the same time.
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// Dir is where named namespaces are bind-mounted, as iproute2 does it.
const Dir = "/var/run/netns"

// NS is a named network namespace with an open handle on it.
type NS struct {
	Name string
	// Fd is the open handle, for APIs that take a namespace by descriptor
	// (netlink, nftables, conntrack).
	Fd int

	f *os.File
}

// Create creates a named namespace (as `ip netns add` does) with its
// loopback up. It fails if the name is taken.
func Create(name string) (*NS, error) {
	if err := create(name); err != nil {
		return nil, err
	}
	ns, err := Open(name)
	if err != nil {
		return nil, errors.Join(err, Delete(name))
	}
	if err := ns.Do(func() error { return linkUp("lo") }); err != nil {
		return nil, errors.Join(err, ns.Delete())
	}
	return ns, nil
}

func create(name string) error {
	return onThread(name, func() error {
		h, err := vnetns.NewNamed(name) // also moves this thread into it
		if err != nil {
			return fmt.Errorf("create netns %s: %w", name, err)
		}
		return h.Close()
	})
}

// Open opens an existing named namespace.
func Open(name string) (*NS, error) {
	f, err := os.Open(filepath.Join(Dir, name))
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	return &NS{Name: name, Fd: int(f.Fd()), f: f}, nil
}

// OpenPath opens the namespace a file names, e.g. /proc/<pid>/ns/net of a
// container's process: the kubelet's pods have no name under Dir. The
// handle keeps the namespace alive while it is open, whatever happens to
// that process.
func OpenPath(path string) (*NS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	return &NS{Name: path, Fd: int(f.Fd()), f: f}, nil
}

// Close closes the handle; the namespace stays.
func (ns *NS) Close() error {
	if ns.f == nil {
		return nil
	}
	err := ns.f.Close()
	ns.f = nil
	return err
}

// Delete closes the handle and removes the namespace.
func (ns *NS) Delete() error {
	return errors.Join(ns.Close(), Delete(ns.Name))
}

// Exists reports whether a named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(filepath.Join(Dir, name))
	return err == nil
}

// Delete removes a named namespace; a missing one is not an error. The
// kernel frees the namespace once no process, socket or handle holds it.
func Delete(name string) error {
	if !Exists(name) {
		return nil
	}
	if err := vnetns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// Command is a command that runs inside the named namespace. `ip netns exec`
// execs the program, so the started process's pid is the program's.
func Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", name}, args...)...)
}

// Exec runs a command inside the namespace and returns its combined output.
func (ns *NS) Exec(args ...string) (string, error) {
	out, err := Command(ns.Name, args...).CombinedOutput()
	return string(out), err
}

// Netlink opens a netlink handle inside the namespace; the caller closes it.
func (ns *NS) Netlink() (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd))
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns.Name, err)
	}
	return h, nil
}

// NetlinkAt opens a netlink handle inside the named namespace; the caller
// closes it. The handle's socket keeps its namespace after the namespace's
// file is closed.
func NetlinkAt(name string) (*netlink.Handle, error) {
	ns, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return ns.Netlink()
}

// linkUp sets a link up in the calling thread's namespace.
func linkUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	return netlink.LinkSetUp(l)
}
