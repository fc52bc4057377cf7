package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Gateways every routed pod routes through. The node side of each pod's
// veth answers for them: a static neighbour entry in the pod for IPv4 (as
// Calico does; proxy_arp is on as well), and fe80::1 on the node side of the
// veth for IPv6, found through neighbour discovery.
var (
	Gateway4 = netip.MustParseAddr("169.254.1.1")
	Gateway6 = netip.MustParseAddr("fe80::1")
)

// MakeNode makes ns a node that routes for its pods: forwarding on for both
// families, and addresses usable at once (no duplicate address detection).
func MakeNode(ns *NS) error {
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv6.conf.all.forwarding", "1"},
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
	} {
		if err := ns.Sysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// AddPod routes pod through node the way a routed CNI does: a veth whose
// node end (hostVeth) has proxy ARP and a host route to each of the pod's
// addresses, the addresses on the pod's eth0, and default routes in the pod
// through Gateway4 (and Gateway6 when ips holds an IPv6 address). A pod
// without IPv6 has IPv6 off, so that it sends no router or neighbour
// solicitations. It returns once both ends of the veth are up.
func AddPod(node, pod *NS, hostVeth string, ips ...netip.Addr) error {
	dualStack := false
	for _, ip := range ips {
		dualStack = dualStack || ip.Is6()
	}
	if err := setPodIPv6Sysctls(pod, dualStack); err != nil {
		return err
	}
	nodeNL, err := node.Netlink()
	if err != nil {
		return err
	}
	defer nodeNL.Close()
	podNL, err := pod.Netlink()
	if err != nil {
		return err
	}
	defer podNL.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostVeth}, PeerName: "eth0", PeerNamespace: netlink.NsFd(pod.Fd)}
	if err := nodeNL.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s for pod %s: %w", hostVeth, pod.Name, err)
	}
	host, err := nodeNL.LinkByName(hostVeth)
	if err != nil {
		return err
	}
	eth0, err := podNL.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := setUpHostVeth(node, pod, nodeNL, host, dualStack); err != nil {
		return err
	}
	for _, ip := range ips {
		if err := nodeNL.RouteAdd(&netlink.Route{LinkIndex: host.Attrs().Index, Dst: PrefixNet(netip.PrefixFrom(ip, ip.BitLen())), Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("route to pod %s: %w", ip, err)
		}
		if err := AddHostAddr(podNL, eth0, ip); err != nil {
			return err
		}
	}
	if err := podNL.LinkSetUp(eth0); err != nil {
		return err
	}
	if err := errors.Join(WaitOperUp(podNL, "eth0"), WaitOperUp(nodeNL, hostVeth)); err != nil {
		return err
	}
	return addPodGatewayRoutes(podNL, pod.Name, eth0, host, dualStack)
}

// setPodIPv6Sysctls turns IPv6 off in a single-stack pod (see AddPod), and
// duplicate address detection off in a dual-stack one, so its addresses are
// usable at once rather than tentative.
func setPodIPv6Sysctls(pod *NS, dualStack bool) error {
	sysctls := [][2]string{{"net.ipv6.conf.all.disable_ipv6", "1"}}
	if dualStack {
		sysctls = [][2]string{{"net.ipv6.conf.default.accept_dad", "0"}, {"net.ipv6.conf.all.accept_dad", "0"}}
	}
	for _, kv := range sysctls {
		if err := pod.Sysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// setUpHostVeth turns proxy ARP on at the node's end of the pod's veth and,
// dual-stack, gives it Gateway6 (see Gateway4), and brings it up.
func setUpHostVeth(node, pod *NS, nodeNL *netlink.Handle, host netlink.Link, dualStack bool) error {
	hostVeth := host.Attrs().Name
	if err := node.Sysctl("net.ipv4.conf."+hostVeth+".proxy_arp", "1"); err != nil {
		return err
	}
	if dualStack {
		if err := pod.Sysctl("net.ipv6.conf.eth0.accept_dad", "0"); err != nil {
			return err
		}
		if err := nodeNL.AddrAdd(host, &netlink.Addr{IPNet: PrefixNet(netip.PrefixFrom(Gateway6, 64)), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("gateway address on %s: %w", hostVeth, err)
		}
	}
	return nodeNL.LinkSetUp(host)
}

// addPodGatewayRoutes gives the pod its static neighbour entry for Gateway4
// (the node end's MAC; see Gateway4) and default routes through the
// gateways.
func addPodGatewayRoutes(podNL *netlink.Handle, podName string, eth0, host netlink.Link, dualStack bool) error {
	idx := eth0.Attrs().Index
	if err := podNL.NeighAdd(&netlink.Neigh{LinkIndex: idx, State: netlink.NUD_PERMANENT, IP: Gateway4.AsSlice(), HardwareAddr: host.Attrs().HardwareAddr}); err != nil {
		return fmt.Errorf("gateway neighbour of pod %s: %w", podName, err)
	}
	routes := []*netlink.Route{
		{LinkIndex: idx, Dst: PrefixNet(netip.PrefixFrom(Gateway4, 32)), Scope: netlink.SCOPE_LINK},
		{LinkIndex: idx, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, Gw: Gateway4.AsSlice()},
	}
	if dualStack {
		routes = append(routes, &netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, Gw: Gateway6.AsSlice()})
	}
	for _, r := range routes {
		if err := podNL.RouteAdd(r); err != nil {
			return fmt.Errorf("route %s in pod %s: %w", r.Dst, podName, err)
		}
	}
	return nil
}

// PrefixNet converts a prefix to the form netlink takes.
func PrefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// AddHostAddr puts ip on link as a host address (/32 or /128, IPv6 without
// duplicate address detection).
func AddHostAddr(nl *netlink.Handle, link netlink.Link, ip netip.Addr) error {
	a := &netlink.Addr{IPNet: PrefixNet(netip.PrefixFrom(ip, ip.BitLen()))}
	if ip.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := nl.AddrAdd(link, a); err != nil {
		return fmt.Errorf("address %s on %s: %w", ip, link.Attrs().Name, err)
	}
	return nil
}

// WaitOperUp waits until the kernel has activated a link that was just set
// up. Until then (linkwatch batches the work and may defer it for up to a
// second) the link sends through the noop qdisc, which drops everything: a
// first ARP request or neighbour solicitation lost that way costs a one
// second retransmission.
func WaitOperUp(nl *netlink.Handle, name string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := nl.LinkByName(name)
		if err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("link %s still %s after 5s", name, l.Attrs().OperState)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
