package netnstest

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/palisade-dev/palisade/internal/netns"
)

// Gateways every pod routes through (see netns.AddPod). IPv6 pods find
// Gateway6 through neighbour discovery, so the tests also prove that
// policies leave neighbour discovery working.
var (
	Gateway4 = netns.Gateway4
	Gateway6 = netns.Gateway6
)

// Pod is a pod's namespace, routed through its node.
type Pod struct {
	*NS
	Node *Node
	// IP4 is always set; IP6 only for dual-stack pods.
	IP4, IP6 netip.Addr
	// HostVeth is the node side of the pod's veth.
	HostVeth string
}

// IPs returns the pod's addresses, IPv4 first.
func (p *Pod) IPs() []netip.Addr {
	if p.IP6.IsValid() {
		return []netip.Addr{p.IP4, p.IP6}
	}
	return []netip.Addr{p.IP4}
}

// AddPod creates a pod behind n with host number host in the node's pod
// CIDRs (10.100.<node>.<host>, and fd00:100:0:<node>::<host> when dualStack).
func (n *Node) AddPod(t testing.TB, host byte, dualStack bool) *Pod {
	t.Helper()
	if host == 0 || host == 255 {
		t.Fatalf("pod host number %d", host)
	}
	n.pods++
	p := &Pod{
		NS:       NewPrefixed(t, n.prefix, fmt.Sprintf("p%d", n.Index)),
		Node:     n,
		IP4:      netip.AddrFrom4([4]byte{10, 100, byte(n.Index), host}),
		HostVeth: fmt.Sprintf("pv%d", n.pods),
	}
	if dualStack {
		a := n.PodCIDR6.Addr().As16()
		a[15] = host
		p.IP6 = netip.AddrFrom16(a)
	}
	if err := netns.AddPod(n.NS.NS, p.NS.NS, p.HostVeth, p.IPs()...); err != nil {
		t.Fatalf("pod %s on %s: %v", p.IP4, n.Name, err)
	}
	return p
}
