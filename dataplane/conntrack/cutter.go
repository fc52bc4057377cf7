package conntrack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/dataplane/policy"
)

// Cutter deletes the conntrack entries of a network namespace that a state
// denies. The zero value works on the caller's namespace.
type Cutter struct {
	// NetNSFd, when positive, is an open handle on the namespace to work on
	// (for tests); 0 means the caller's namespace.
	NetNSFd int
}

// Cut deletes every conntrack entry (TCP, UDP, SCTP; IPv4 and IPv6) whose
// original direction st denies, and returns how many it deleted. Call it
// right after the backend has programmed st: an entry created after the
// dump already met st's rules.
//
// Entries that vanish between the dump and the delete are not errors. A
// dump the kernel interrupted (the table changed during it) is retried once
// by the next Cut; the entries that were read are still judged.
func (c Cutter) Cut(ctx context.Context, st *policy.State) (int, error) {
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	defer h.Close()
	judge := NewJudge(st)
	var errs []error
	removed := 0
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if ctx.Err() != nil {
			return removed, ctx.Err()
		}
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, deniedFilter{judge})
		removed += int(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("delete denied conntrack entries (family %d): %w", fam, err))
		}
	}
	if removed > 0 {
		log.FromContext(ctx).Info("cut connections the new policy denies", "connections", removed)
	}
	return removed, errors.Join(errs...)
}

// List returns the flows of the namespace's conntrack table that policy
// judges (TCP, UDP, SCTP), for tests and diagnostics.
func (c Cutter) List() ([]Flow, error) {
	h, err := c.handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var out []Flow
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
		if err != nil {
			return nil, fmt.Errorf("list conntrack (family %d): %w", fam, err)
		}
		for _, f := range flows {
			if fl, ok := flowOf(f); ok {
				out = append(out, fl)
			}
		}
	}
	return out, nil
}

func (c Cutter) handle() (*netlink.Handle, error) {
	var h *netlink.Handle
	var err error
	if c.NetNSFd > 0 {
		h, err = netlink.NewHandleAt(netns.NsHandle(c.NetNSFd), unix.NETLINK_NETFILTER)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	if err != nil {
		return nil, fmt.Errorf("open conntrack netlink: %w", err)
	}
	return h, nil
}

// deniedFilter adapts Judge to netlink's filter interface.
type deniedFilter struct{ j *Judge }

func (d deniedFilter) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	fl, ok := flowOf(f)
	return ok && d.j.Denied(fl)
}

func flowOf(f *netlink.ConntrackFlow) (Flow, bool) {
	return FlowOf(tupleOf(f.Forward), tupleOf(f.Reverse), f.Status&netlink.ConntrackStatusDstNAT != 0)
}

func tupleOf(t netlink.IPTuple) Tuple {
	return Tuple{Src: addrOf(t.SrcIP), Dst: addrOf(t.DstIP), SrcPort: t.SrcPort, DstPort: t.DstPort, Proto: t.Protocol}
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
