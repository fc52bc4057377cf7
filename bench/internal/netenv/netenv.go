// Package netenv creates the network namespaces the benchmarks run in: a
// node namespace with routed pod namespaces behind it, built by
// internal/netns as the kernel tests and the local cluster build theirs, so
// that pod-to-pod traffic crosses the node's forward hook. Every namespace
// is named pbn-<...>; Env.Close removes all of them.
package netenv

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/internal/netns"
)

// Prefix starts the name of every namespace the benchmarks create.
const Prefix = "pbn"

// Env owns the namespaces it created: NewNS (from netns.Set) creates
// pbn-<name>, replacing a leftover of an interrupted run.
type Env struct {
	*netns.Set
}

// New returns an empty Env.
func New() Env { return Env{netns.NewSet(Prefix)} }

// NewNS creates pbn-<name> with lo up.
func (e Env) NewNS(name string) (*netns.NS, error) { return e.Create(name) }

// Pod is a pod namespace routed through a node namespace.
type Pod struct {
	*netns.NS
	IP netip.Addr
}

// NewNode creates a node namespace that routes for its pods.
func (e Env) NewNode(name string) (*netns.NS, error) {
	n, err := e.Create(name)
	if err != nil {
		return nil, err
	}
	return n, netns.MakeNode(n)
}

// AddPod creates pod namespace pbn-<name> with address ip, routed through
// node (see netns.AddPod).
func (e Env) AddPod(node *netns.NS, name string, ip netip.Addr) (*Pod, error) {
	ns, err := e.Create(name)
	if err != nil {
		return nil, err
	}
	hostVeth := "v" + name
	if len(hostVeth) > 15 {
		hostVeth = hostVeth[:15]
	}
	if err := netns.AddPod(node, ns, hostVeth, ip); err != nil {
		return nil, err
	}
	return &Pod{NS: ns, IP: ip}, nil
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
