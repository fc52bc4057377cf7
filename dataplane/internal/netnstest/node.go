package netnstest

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/internal/netns"
)

// Node is a node's root namespace: pods are routed veths ending in it, so
// its forward hook sees all pod traffic. Node i owns the node addresses
// 10.100.0.i and fd00:100::i (on lo) and the pod CIDRs 10.100.i.0/24 and
// fd00:100:0:i::/64.
type Node struct {
	*NS
	// Name is the node's name in the API (spec.nodeName of its pods).
	Name     string
	Index    int
	IP4, IP6 netip.Addr
	PodCIDR4 netip.Prefix
	PodCIDR6 netip.Prefix

	nl     *netlink.Handle
	pods   int
	prefix string
}

// NewNode creates node number index (1..254) with forwarding on.
func NewNode(t testing.TB, name string, index int) *Node {
	t.Helper()
	return NewNodePrefixed(t, DefaultPrefix, name, index)
}

// NewNodePrefixed is NewNode whose namespaces (its own and its pods') are
// named with prefix instead of DefaultPrefix.
func NewNodePrefixed(t testing.TB, prefix, name string, index int) *Node {
	t.Helper()
	if index < 1 || index > 254 {
		t.Fatalf("node index %d out of 1..254", index)
	}
	n := &Node{
		NS:       NewPrefixed(t, prefix, fmt.Sprintf("n%d", index)),
		prefix:   prefix,
		Name:     name,
		Index:    index,
		IP4:      netip.AddrFrom4([4]byte{10, 100, 0, byte(index)}),
		IP6:      netip.MustParseAddr(fmt.Sprintf("fd00:100::%x", index)),
		PodCIDR4: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100, byte(index), 0}), 24),
		PodCIDR6: netip.MustParsePrefix(fmt.Sprintf("fd00:100:0:%x::/64", index)),
	}
	n.nl = handle(t, n.NS)
	if err := netns.MakeNode(n.NS.NS); err != nil {
		t.Fatalf("node %s: %v", n.Name, err)
	}
	lo, err := n.nl.LinkByName("lo")
	if err != nil {
		t.Fatalf("lo of %s: %v", n.Name, err)
	}
	addAddr(t, n.nl, lo, n.IP4)
	addAddr(t, n.nl, lo, n.IP6)
	return n
}

// Connect joins two nodes with a veth and routes each one's pod CIDRs and
// node addresses to the other, so a pod behind b is a remote peer for a's
// pods (its traffic to them crosses a's forward hook).
func Connect(t testing.TB, a, b *Node) {
	t.Helper()
	nameA, nameB := fmt.Sprintf("nx%d", b.Index), fmt.Sprintf("nx%d", a.Index)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: nameA}, PeerName: nameB, PeerNamespace: netlink.NsFd(b.Fd)}
	if err := a.nl.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s-%s: %v", a.Name, b.Name, err)
	}
	la, err := a.nl.LinkByName(nameA)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.nl.LinkByName(nameB)
	if err != nil {
		t.Fatal(err)
	}
	for _, up := range []struct {
		nl   *netlink.Handle
		link netlink.Link
	}{{a.nl, la}, {b.nl, lb}} {
		if err := up.nl.LinkSetUp(up.link); err != nil {
			t.Fatal(err)
		}
	}
	waitOperUp(t, a.nl, nameA)
	waitOperUp(t, b.nl, nameB)
	for _, side := range []struct {
		self, peer   *Node
		link, remote netlink.Link
	}{{a, b, la, lb}, {b, a, lb, la}} {
		nl, idx := side.self.nl, side.link.Attrs().Index
		ll := netip.MustParseAddr(fmt.Sprintf("fe80::%x", side.self.Index))
		peerLL := netip.MustParseAddr(fmt.Sprintf("fe80::%x", side.peer.Index))
		if err := nl.AddrAdd(side.link, &netlink.Addr{IPNet: netns.PrefixNet(netip.PrefixFrom(ll, 64)), Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatalf("address %s on %s: %v", ll, side.self.Name, err)
		}
		// Static neighbours: the peer node answers for addresses on its lo
		// over ARP but not over neighbour discovery.
		mac := side.remote.Attrs().HardwareAddr
		for _, ip := range []netip.Addr{side.peer.IP4, peerLL} {
			if err := nl.NeighAdd(&netlink.Neigh{LinkIndex: idx, State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac}); err != nil {
				t.Fatalf("neighbour %s on %s: %v", ip, side.self.Name, err)
			}
		}
		routes := []*netlink.Route{
			{LinkIndex: idx, Dst: netns.PrefixNet(netip.PrefixFrom(side.peer.IP4, 32)), Scope: netlink.SCOPE_LINK},
			{LinkIndex: idx, Dst: netns.PrefixNet(side.peer.PodCIDR4), Gw: side.peer.IP4.AsSlice()},
			{LinkIndex: idx, Dst: netns.PrefixNet(netip.PrefixFrom(side.peer.IP6, 128)), Gw: peerLL.AsSlice()},
			{LinkIndex: idx, Dst: netns.PrefixNet(side.peer.PodCIDR6), Gw: peerLL.AsSlice()},
		}
		for _, r := range routes {
			if err := nl.RouteAdd(r); err != nil {
				t.Fatalf("route %s on %s: %v", r.Dst, side.self.Name, err)
			}
		}
	}
}

func handle(t testing.TB, ns *NS) *netlink.Handle {
	t.Helper()
	h, err := ns.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func addAddr(t testing.TB, nl *netlink.Handle, link netlink.Link, ip netip.Addr) {
	t.Helper()
	if err := netns.AddHostAddr(nl, link, ip); err != nil {
		t.Fatal(err)
	}
}

func waitOperUp(t testing.TB, nl *netlink.Handle, name string) {
	t.Helper()
	if err := netns.WaitOperUp(nl, name); err != nil {
		t.Fatal(err)
	}
}
