package conntrack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/internal/policy"
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
	denied := &deniedFilter{j: NewJudge(st), replies: map[Tuple]bool{}}
	removed, err := c.deleteMatching(ctx, h, denied)
	if removed > 0 {
		log.FromContext(ctx).Info("cut connections the new policy denies", "connections", removed)
		go c.cutRevived(ctx, denied.replies)
	}
	return removed, err
}

// revivalChecks are when, after a cut, entries that revive a cut flow from
// its other end are looked for.
var revivalChecks = []time.Duration{200 * time.Millisecond, time.Second, 3 * time.Second}

// cutRevived deletes entries whose original direction is the reply
// direction of an entry Cut deleted. A reply in flight when its entry was
// deleted (a UDP echo, say) creates such an entry: the server's side is
// often judged by nobody (not egress-isolated, the client not
// ingress-isolated), and the client's next datagrams then pass as its
// replies. TCP has the ruleset's mid-stream rule; UDP has no handshake, so
// the revived entry is found by its exact tuple, which a genuinely new flow
// from the server would not reuse.
func (c Cutter) cutRevived(ctx context.Context, replies map[Tuple]bool) {
	logger := log.FromContext(ctx)
	start := time.Now()
	for _, at := range revivalChecks {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(at))):
		}
		h, err := c.handle()
		if err != nil {
			logger.Error(err, "look for revived connections")
			return
		}
		n, err := c.deleteMatching(ctx, h, revivedFilter(replies))
		h.Close()
		if err != nil {
			logger.Error(err, "delete revived connections")
		}
		if n > 0 {
			logger.Info("cut connections revived by in-flight replies", "connections", n)
		}
	}
}

// deleteMatching deletes the entries of both families that f matches.
func (c Cutter) deleteMatching(ctx context.Context, h *netlink.Handle, f netlink.CustomConntrackFilter) (int, error) {
	var errs []error
	removed := 0
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if ctx.Err() != nil {
			return removed, ctx.Err()
		}
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, f)
		removed += int(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("delete conntrack entries (family %d): %w", fam, err))
		}
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

// deniedFilter adapts Judge to netlink's filter interface and records the
// reply tuples of the entries it matches.
type deniedFilter struct {
	j       *Judge
	replies map[Tuple]bool
}

func (d *deniedFilter) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	fl, ok := flowOf(f)
	if !ok || !d.j.Denied(fl) {
		return false
	}
	d.replies[tupleOf(f.Reverse)] = true
	return true
}

// revivedFilter matches entries whose original tuple is one of the replies.
type revivedFilter map[Tuple]bool

func (r revivedFilter) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	return r[tupleOf(f.Forward)]
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
