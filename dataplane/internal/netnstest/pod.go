package netnstest

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Gateways every pod routes through. The node side of each veth answers for
// them: a static neighbour entry in the pod for IPv4 (as Calico does, and as
// internal/localcluster does; proxy_arp is on as well), and fe80::1 on the node side
// of every veth for IPv6, found through neighbour discovery (so the tests
// also prove that policies leave neighbour discovery working).
var (
	Gateway4 = netip.MustParseAddr("169.254.1.1")
	Gateway6 = netip.MustParseAddr("fe80::1")
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
		p.Sysctl(t, "net.ipv6.conf.default.accept_dad", "0")
		p.Sysctl(t, "net.ipv6.conf.all.accept_dad", "0")
	} else {
		p.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
	}
	podNL := handle(t, p.NS)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.HostVeth}, PeerName: "eth0", PeerNamespace: netlink.NsFd(p.Fd)}
	if err := n.nl.LinkAdd(veth); err != nil {
		t.Fatalf("veth for pod %s: %v", p.IP4, err)
	}
	hostLink, err := n.nl.LinkByName(p.HostVeth)
	if err != nil {
		t.Fatal(err)
	}
	eth0, err := podNL.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	n.Sysctl(t, "net.ipv4.conf."+p.HostVeth+".proxy_arp", "1")
	if dualStack {
		p.Sysctl(t, "net.ipv6.conf.eth0.accept_dad", "0")
		if err := n.nl.AddrAdd(hostLink, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(Gateway6, 64)), Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatalf("gateway address on %s: %v", p.HostVeth, err)
		}
	}
	if err := n.nl.LinkSetUp(hostLink); err != nil {
		t.Fatal(err)
	}
	for _, ip := range p.IPs() {
		if err := n.nl.RouteAdd(&netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: prefixNet(netip.PrefixFrom(ip, ip.BitLen())), Scope: netlink.SCOPE_LINK}); err != nil {
			t.Fatalf("route to pod %s: %v", ip, err)
		}
		addAddr(t, podNL, eth0, ip)
	}
	if err := podNL.LinkSetUp(eth0); err != nil {
		t.Fatal(err)
	}
	waitOperUp(t, podNL, "eth0")
	waitOperUp(t, n.nl, p.HostVeth)
	idx := eth0.Attrs().Index
	if err := podNL.NeighAdd(&netlink.Neigh{LinkIndex: idx, State: netlink.NUD_PERMANENT, IP: Gateway4.AsSlice(), HardwareAddr: hostLink.Attrs().HardwareAddr}); err != nil {
		t.Fatalf("gateway neighbour of pod %s: %v", p.IP4, err)
	}
	routes := []*netlink.Route{
		{LinkIndex: idx, Dst: prefixNet(netip.PrefixFrom(Gateway4, 32)), Scope: netlink.SCOPE_LINK},
		{LinkIndex: idx, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, Gw: Gateway4.AsSlice()},
	}
	if dualStack {
		routes = append(routes, &netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, Gw: Gateway6.AsSlice()})
	}
	for _, r := range routes {
		if err := podNL.RouteAdd(r); err != nil {
			t.Fatalf("route %s in pod %s: %v", r.Dst, p.IP4, err)
		}
	}
	return p
}
