package flowlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/dataplane/verdictlog"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Defaults of Config.
const (
	// DefaultBufferSize is the socket receive buffer: room for tens of
	// thousands of log messages, so that a burst never makes the kernel
	// wait (it never does: it drops and we count the gap).
	DefaultBufferSize = 8 << 20
	// DefaultGrace is how long the table of the previous state still
	// decodes prefixes after an Update.
	DefaultGrace = time.Minute
)

// Config configures a Reader.
type Config struct {
	// Group is the NFLOG group to read; 0 means verdictlog.DefaultGroup.
	Group uint16
	// NetNSFd is the network namespace to read in; 0 means the caller's.
	NetNSFd int
	// BufferSize is the socket receive buffer in bytes; 0 means
	// DefaultBufferSize.
	BufferSize int
	// Grace is how long the previous table keeps decoding after Update; 0
	// means DefaultGrace.
	Grace time.Duration
}

// Stats counts what the reader saw.
type Stats struct {
	// Received counts decoded events handed to the handler.
	Received uint64
	// Lost counts messages the kernel could not deliver (gaps in the
	// instance's sequence numbers, or a receive buffer overrun when no
	// sequence number told how many).
	Lost uint64
	// Undecodable counts messages that were not Palisade's or whose packet
	// could not be read.
	Undecodable uint64
}

// Reader reads Palisade's verdict log over netlink (nfnetlink_log).
type Reader struct {
	cfg   Config
	table prefixTable
	ready chan struct{}
	once  sync.Once

	received, lost, undecodable atomic.Uint64
}

// NewReader returns a reader; Run starts reading.
func NewReader(cfg Config) *Reader {
	if cfg.Group == 0 {
		cfg.Group = verdictlog.DefaultGroup
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	return &Reader{cfg: cfg, table: prefixTable{grace: cfg.Grace}, ready: make(chan struct{})}
}

// Update makes the reader decode prefixes of st's ruleset (and, for the
// grace period, those of the previous state). Call it with every state the
// backend programs.
func (r *Reader) Update(st *policy.State) { r.table.update(st, time.Now()) }

// Stats returns the counters.
func (r *Reader) Stats() Stats {
	return Stats{Received: r.received.Load(), Lost: r.lost.Load(), Undecodable: r.undecodable.Load()}
}

// Ready is closed once the reader is bound to its group: packets logged
// from then on are read.
func (r *Reader) Ready() <-chan struct{} { return r.ready }

// Run binds the group and hands every decoded event to handle, from this
// goroutine, until ctx ends (then it returns nil). handle must be quick:
// while it runs the socket buffer fills, and what does not fit is lost and
// counted. It fails when the group cannot be bound (another reader holds
// it, or no permission).
func (r *Reader) Run(ctx context.Context, handle func(Event)) error {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: r.cfg.NetNSFd})
	if err != nil {
		return fmt.Errorf("dial nfnetlink: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		if stop() {
			conn.Close()
		}
	}()
	// The kernel never waits for us: when the buffer is full, nfnetlink_log
	// drops the message (its sequence number still advances, so the gap
	// tells how many) and recv reports ENOBUFS once.
	r.setBuffer(conn)
	if _, err := conn.Send(bindMessage(r.cfg.Group)); err != nil {
		return fmt.Errorf("bind nflog group %d: %w", r.cfg.Group, err)
	}
	bound := false
	var lastSeq uint32
	haveSeq := false
	for {
		msgs, err := conn.Receive()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				if !haveSeq {
					r.lost.Add(1)
				}
				continue
			}
			if !bound {
				return fmt.Errorf("bind nflog group %d: %w", r.cfg.Group, err)
			}
			return fmt.Errorf("read nflog group %d: %w", r.cfg.Group, err)
		}
		now := time.Now()
		for _, m := range msgs {
			switch m.Header.Type {
			case netlink.Error:
				// The acknowledgement of the bind (errors come back as err).
				if !bound {
					bound = true
					r.once.Do(func() { close(r.ready) })
				}
				continue
			case netlink.HeaderType(subsysULOG<<8 | msgPacket):
			default:
				continue
			}
			lm, err := parseLogMessage(m.Data)
			if err != nil {
				r.undecodable.Add(1)
				continue
			}
			if lm.HasSeq {
				if haveSeq && lm.Seq-lastSeq > 1 {
					r.lost.Add(uint64(lm.Seq - lastSeq - 1))
				}
				lastSeq, haveSeq = lm.Seq, true
			}
			ev, ok := r.table.event(lm, now)
			if !ok {
				r.undecodable.Add(1)
				continue
			}
			r.received.Add(1)
			handle(ev)
		}
	}
}

// setBuffer sizes the receive buffer, past rmem_max when allowed (root).
func (r *Reader) setBuffer(conn *netlink.Conn) {
	_ = conn.SetReadBuffer(r.cfg.BufferSize)
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, r.cfg.BufferSize)
		})
	}
}

// bindMessage binds the socket to the group, copying the first copyRange
// bytes of each packet and numbering messages, in one request: the
// instance exists from the bind on, so mode and flags travel with it.
func bindMessage(group uint16) netlink.Message {
	data := []byte{unix.AF_UNSPEC, nfnetlinkV0, 0, 0}
	binary.BigEndian.PutUint16(data[2:], group)
	data = appendAttr(data, cfgAttrCmd, []byte{cfgCmdBind})
	mode := make([]byte, 6)
	binary.BigEndian.PutUint32(mode, copyRange)
	mode[4] = copyPacket
	data = appendAttr(data, cfgAttrMode, mode)
	data = appendAttr(data, cfgAttrFlags, binary.BigEndian.AppendUint16(nil, cfgFlagSeq))
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(subsysULOG<<8 | msgConfig), Flags: netlink.Request | netlink.Acknowledge},
		Data:   data,
	}
}

func appendAttr(b []byte, typ uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
