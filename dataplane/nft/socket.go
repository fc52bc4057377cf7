package nft

import (
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/dataplane/render"
)

// This file sizes the netlink socket of a transaction. google/nftables sends
// the whole batch in one sendmsg and then reads one acknowledgement per
// message, and the kernel's defaults (net.core.wmem_default and
// rmem_default, 208 KiB, which a network namespace cannot raise) fit neither
// a large ruleset nor its acknowledgements:
//
//   - netlink_sendmsg refuses a message larger than the send buffer
//     (EMSGSIZE, "sendmsg: message too long");
//   - nfnetlink queues every acknowledgement before the sender reads any and
//     drops those that overflow the receive buffer, which the next recvmsg
//     reports as ENOBUFS (google/nftables#103).
//
// So each transaction raises both buffers to what its batch needs, with
// SO_SNDBUFFORCE and SO_RCVBUFFORCE (CAP_NET_ADMIN, which programming
// nftables needs anyway). The sizes are limits, not allocations: the kernel
// charges only what is actually queued.

// Per-item upper bounds of the encoded batch, in bytes. They are generous on
// purpose (TestBudgetCoversBatch checks them against the library's actual
// encoding): an overestimate only raises a limit.
const (
	msgOverhead  = 256  // nlmsghdr, nfgenmsg, table, chain and set names
	exprBound    = 256  // one expression with its nested attributes
	ackTruesize  = 2048 // kernel memory one queued acknowledgement is charged (~768 B on x86-64)
	minSocketBuf = 1 << 20
)

// budget is what one transaction needs from its socket.
type budget struct {
	msgs  int
	bytes int
}

func (b budget) plus(o budget) budget { return budget{msgs: b.msgs + o.msgs, bytes: b.bytes + o.bytes} }

// rulesetBudget bounds the messages and bytes that adding (or deleting)
// every object of rs takes. An incremental update sends at most the budget
// of the old ruleset (deletions, flushes) plus that of the new one.
func rulesetBudget(rs *render.Ruleset) budget {
	var b budget
	for i := range rs.Chains {
		b = b.plus(chainBudget(&rs.Chains[i]))
	}
	for i := range rs.Sets {
		b = b.plus(setBudget(&rs.Sets[i]))
	}
	return b
}

// chainBudget bounds adding (or flushing and deleting) a chain with its
// rules.
func chainBudget(c *render.Chain) budget {
	// The chain itself and its flush.
	b := budget{msgs: 2, bytes: 2 * msgOverhead}
	for j := range c.Rules {
		b.msgs++
		b.bytes += msgOverhead + exprBound*ruleExprBound(&c.Rules[j])
	}
	return b
}

// setBudget bounds adding (or deleting) a set with its elements.
func setBudget(s *render.Set) budget {
	return budget{msgs: 1, bytes: msgOverhead}.plus(elementsBudget(elements(s, s.Elements)))
}

// elementsBudget bounds adding (or deleting) encoded elements.
func elementsBudget(es []nftables.SetElement) budget {
	var b budget
	for _, part := range elementChunks(es) {
		b.msgs++
		b.bytes += msgOverhead + elementListBytes(part)
	}
	return b
}

// ruleExprBound bounds the number of expressions ruleExprs makes of r.
func ruleExprBound(r *render.Rule) int {
	n := 3 // family match and verdict
	if r.CtState != render.CtNone {
		n += 3
	}
	if r.ICMPv6Type != 0 {
		n += 4
	}
	for _, set := range []string{r.SaddrSet, r.DaddrSet, r.SaddrMap, r.DaddrMap} {
		if set != "" {
			n += 2
		}
	}
	if r.ProtoPortSet != "" {
		n += 3
	}
	if r.DaddrProtoPortSet != "" {
		n += 4
	}
	if r.Log.Prefix != "" {
		n += 2 + len(r.Log.Prefix)/exprBound
	}
	return n
}

// withBudget returns opts (copied) plus an option that raises the socket
// buffers of the connection to what need says when it is dialled.
func withBudget(opts []nftables.ConnOption, need budget) []nftables.ConnOption {
	return append(slices.Clip(opts), sized(need))
}

func sized(need budget) nftables.ConnOption {
	return nftables.WithSockOptions(func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			// Not a kernel socket (a test dial): nothing to size.
			return nil
		}
		// Error acknowledgements would otherwise echo the whole failed
		// message (up to the element-list limit each); only successful
		// ones are small.
		if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
			return fmt.Errorf("set NETLINK_CAP_ACK: %w", err)
		}
		// The kernel doubles the value; the doubled size leaves the
		// headroom the bounds above do not.
		snd := max(minSocketBuf, need.bytes)
		rcv := max(minSocketBuf, need.msgs*ackTruesize)
		if err := setBuffer(raw, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, snd); err != nil {
			return fmt.Errorf("size netlink send buffer to %d bytes: %w", snd, err)
		}
		if err := setBuffer(raw, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, rcv); err != nil {
			return fmt.Errorf("size netlink receive buffer to %d bytes: %w", rcv, err)
		}
		return nil
	})
}

// setBuffer sets a socket buffer with the privileged option, falling back to
// the unprivileged one (capped at net.core.[rw]mem_max) without
// CAP_NET_ADMIN, so that small transactions still work.
func setBuffer(raw syscall.RawConn, force, plain, size int) error {
	var serr error
	err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, force, size)
		if errors.Is(serr, unix.EPERM) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, plain, size)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
