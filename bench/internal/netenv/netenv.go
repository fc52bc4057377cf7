// Package netenv creates the network namespaces the benchmarks run in: a
// node namespace with routed pod namespaces behind it, the way a routed CNI
// wires pods, so that pod-to-pod traffic crosses the node's forward hook.
// Every namespace is named pbn-<...>; Env.Close removes all of them.
package netenv

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace the benchmarks create.
const Prefix = "pbn-"

// Env owns the namespaces it created.
type Env struct {
	mu    sync.Mutex
	names []string
	files []*os.File
}

// NS is a named network namespace with an open handle.
type NS struct {
	Name string
	Fd   int
}

// NewNS creates pbn-<name> with lo up. A leftover of an interrupted run with
// the same name is removed first.
func (e *Env) NewNS(name string) (*NS, error) {
	full := Prefix + name
	_ = exec.Command("ip", "netns", "del", full).Run()
	if out, err := exec.Command("ip", "netns", "add", full).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", full, err, out)
	}
	e.mu.Lock()
	e.names = append(e.names, full)
	e.mu.Unlock()
	f, err := os.Open(filepath.Join("/var/run/netns", full))
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.files = append(e.files, f)
	e.mu.Unlock()
	ns := &NS{Name: full, Fd: int(f.Fd())}
	if out, err := ns.Exec("ip", "link", "set", "lo", "up"); err != nil {
		return nil, fmt.Errorf("lo up in %s: %w: %s", full, err, out)
	}
	return ns, nil
}

// Close deletes every namespace the env created, last first.
func (e *Env) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, f := range e.files {
		_ = f.Close()
	}
	for i := len(e.names) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", e.names[i]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", e.names[i], err, out))
		}
	}
	e.names, e.files = nil, nil
	return errors.Join(errs...)
}

// Exec runs a command inside the namespace.
func (ns *NS) Exec(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.Name}, args...)...).CombinedOutput()
	return string(out), err
}

// Do runs fn on an OS thread inside the namespace. Sockets fn opens stay
// there; processes it starts run there. If the thread cannot return to its
// namespace it is left locked, so the runtime discards it.
func (ns *NS) Do(fn func() error) error {
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
		if err := netns.Set(netns.NsHandle(ns.Fd)); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Sysctl writes a net.* sysctl of the namespace.
func (ns *NS) Sysctl(key, value string) error {
	return ns.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), []byte(value), 0o644)
	})
}

// Gateway is the link-local next hop of every pod; the node side of each
// veth answers for it.
var Gateway = netip.MustParseAddr("169.254.1.1")

// Pod is a pod namespace routed through a node namespace.
type Pod struct {
	*NS
	IP netip.Addr
}

// NewNode creates a node namespace with forwarding on.
func (e *Env) NewNode(name string) (*NS, error) {
	n, err := e.NewNS(name)
	if err != nil {
		return nil, err
	}
	return n, n.Sysctl("net.ipv4.ip_forward", "1")
}

// AddPod creates pod namespace pbn-<name> with address ip behind node:
// a veth whose node end has proxy ARP and a /32 route to the pod, and a
// default route in the pod through Gateway.
func (e *Env) AddPod(node *NS, name string, ip netip.Addr) (*Pod, error) {
	ns, err := e.NewNS(name)
	if err != nil {
		return nil, err
	}
	if err := ns.Sysctl("net.ipv6.conf.all.disable_ipv6", "1"); err != nil {
		return nil, err
	}
	nodeNL, err := netlink.NewHandleAt(netns.NsHandle(node.Fd))
	if err != nil {
		return nil, err
	}
	defer nodeNL.Close()
	podNL, err := netlink.NewHandleAt(netns.NsHandle(ns.Fd))
	if err != nil {
		return nil, err
	}
	defer podNL.Close()
	hostName := "v" + name
	if len(hostName) > 15 {
		hostName = hostName[:15]
	}
	if err := nodeNL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostName}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns.Fd)}); err != nil {
		return nil, fmt.Errorf("veth for %s: %w", name, err)
	}
	host, err := nodeNL.LinkByName(hostName)
	if err != nil {
		return nil, err
	}
	if err := node.Sysctl("net.ipv4.conf."+hostName+".proxy_arp", "1"); err != nil {
		return nil, err
	}
	if err := nodeNL.LinkSetUp(host); err != nil {
		return nil, err
	}
	host32 := &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}
	if err := nodeNL.RouteAdd(&netlink.Route{LinkIndex: host.Attrs().Index, Dst: host32, Scope: netlink.SCOPE_LINK}); err != nil {
		return nil, err
	}
	eth0, err := podNL.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	if err := podNL.AddrAdd(eth0, &netlink.Addr{IPNet: host32}); err != nil {
		return nil, err
	}
	if err := podNL.LinkSetUp(eth0); err != nil {
		return nil, err
	}
	gw := Gateway.AsSlice()
	if err := podNL.NeighAdd(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, State: netlink.NUD_PERMANENT, IP: gw, HardwareAddr: host.Attrs().HardwareAddr}); err != nil {
		return nil, err
	}
	if err := podNL.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}); err != nil {
		return nil, err
	}
	if err := podNL.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}); err != nil {
		return nil, err
	}
	return &Pod{NS: ns, IP: ip}, nil
}

// Named opens an existing namespace by its full name (not owned by an Env).
func Named(name string) (*NS, func(), error) {
	f, err := os.Open(filepath.Join("/var/run/netns", name))
	if err != nil {
		return nil, nil, err
	}
	return &NS{Name: name, Fd: int(f.Fd())}, func() { _ = f.Close() }, nil
}

// TCPConnect opens a TCP connection to dst from the calling thread's
// namespace and waits at most timeoutMs for the handshake. It resets the
// connection right away (no TIME_WAIT). It reports whether the handshake
// completed.
func TCPConnect(dst netip.AddrPort, timeoutMs int) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer func() {
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		_ = unix.Close(fd)
	}()
	sa := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
	err = unix.Connect(fd, sa)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, unix.EINPROGRESS) {
		return false, nil
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		n, err := unix.Poll(pfd, timeoutMs)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, err
		}
		if n == 0 {
			return false, nil
		}
		break
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return false, err
	}
	return soerr == 0, nil
}
