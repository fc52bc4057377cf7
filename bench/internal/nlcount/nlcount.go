// Package nlcount measures what the nftables backend sends to the kernel.
//
// Bytes: the backend owns its netlink socket and offers no hook on it, and
// this kernel has no nlmon device, so a worker process is run under strace,
// tracing only sendmsg (seccomp-filtered, so the rest runs at full speed);
// the return value of each sendmsg is the number of bytes the kernel took.
// The worker marks the start of each operation with a faccessat() of a
// path under /pbn-mark/, which strace records in order.
//
// Transactions: nf_tables bumps its generation id once per committed
// transaction (batch), so the difference of NFT_MSG_GETGEN before and after
// a sync is the number of transactions it made.
package nlcount

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// MarkDir prefixes the paths the worker touches to mark operations.
const MarkDir = "/pbn-mark/"

// Mark tells a tracing parent that the operation label starts now.
func Mark(label string) { _ = unix.Faccessat(unix.AT_FDCWD, MarkDir+label, unix.F_OK, 0) }

// Op is what was sent during one marked operation.
type Op struct {
	Label    string
	Bytes    int
	Sendmsgs int
}

var (
	markRE    = regexp.MustCompile(`faccessat2?\(AT_FDCWD, "` + regexp.QuoteMeta(MarkDir) + `([^"]+)"`)
	sendRE    = regexp.MustCompile(`sendmsg\(.*= (\d+)$`)
	resumedRE = regexp.MustCompile(`<\.\.\. sendmsg resumed>.*= (\d+)$`)
)

// Trace runs argv under strace and returns the operations it marked, in
// order. Sends before the first mark are not counted.
func Trace(argv []string, stdout *os.File) ([]Op, error) {
	f, err := os.CreateTemp("", "pbn-strace-*.txt")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	_ = f.Close()
	defer func() { _ = os.Remove(path) }()
	args := append([]string{"-f", "-qq", "--seccomp-bpf", "-e", "trace=sendmsg,faccessat,faccessat2", "-e", "signal=none", "-o", path}, argv...)
	cmd := exec.Command("strace", args...)
	cmd.Stdout, cmd.Stderr = stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("strace %s: %w", strings.Join(argv, " "), err)
	}
	return parse(path)
}

func parse(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var ops []Op
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Text()
		if m := markRE.FindStringSubmatch(line); m != nil {
			ops = append(ops, Op{Label: m[1]})
			continue
		}
		m := sendRE.FindStringSubmatch(line)
		if m == nil {
			m = resumedRE.FindStringSubmatch(line)
		}
		if m == nil || len(ops) == 0 {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		ops[len(ops)-1].Bytes += n
		ops[len(ops)-1].Sendmsgs++
	}
	return ops, sc.Err()
}

// Generation returns nf_tables' generation id in the namespace behind fd.
func Generation(nsFd int) (uint32, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return 0, fmt.Errorf("dial netfilter netlink: %w", err)
	}
	defer func() { _ = c.Close() }()
	// struct nfgenmsg: family, version, resource id.
	req := netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return 0, fmt.Errorf("getgen: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, fmt.Errorf("getgen: no generation id in the answer")
}
