// Command podserver is what runs inside every pod of the local cluster.
//
//	podserver serve --name x/a --tcp 80,81 --udp 80,81 --sctp 80,81 [--dns-port 53] [--ready-file F]
//	podserver probe --proto tcp|udp|sctp|dns-udp|dns-tcp --addr 10.244.1.3:80|orders.shop:8080 [--timeout 1s]
//
// Run it in a pod's network namespace: `ip netns exec palisade-x-a bin/podserver probe ...`,
// or in a real node's pod: `kubectl exec -n shop deploy/checkout -- /podserver probe --addr orders.shop:8080`.
// probe prints the name of the pod that answered and exits 0, or exits 1 with
// "blocked or unreachable" when the connection did not complete. A name in
// --addr is resolved with the pod's resolver (its /etc/resolv.conf) first;
// failing that, it exits 1 with "resolve".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/palisade-dev/palisade/internal/localcluster/probe"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "probe":
		err = runProbe(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "podserver:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: podserver serve|probe [flags] (see -h of each)")
	os.Exit(2)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", "", "name answered to every probe, e.g. x/a")
	tcp := fs.String("tcp", "", "comma-separated TCP ports")
	udp := fs.String("udp", "", "comma-separated UDP ports")
	sctp := fs.String("sctp", "", "comma-separated SCTP ports")
	dnsPort := fs.Int("dns-port", 0, "serve DNS on this UDP and TCP port")
	readyFile := fs.String("ready-file", "", "file created once every port is bound")
	_ = fs.Parse(args)
	cfg := probe.ServerConfig{Name: *name, DNSPort: *dnsPort}
	var err error
	if cfg.TCP, err = probe.ParsePorts(*tcp); err != nil {
		return err
	}
	if cfg.UDP, err = probe.ParsePorts(*udp); err != nil {
		return err
	}
	if cfg.SCTP, err = probe.ParsePorts(*sctp); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return probe.Serve(ctx, cfg, func() {
		if *readyFile != "" {
			_ = os.WriteFile(*readyFile, []byte("ready\n"), 0o644)
		}
	})
}

func runProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	proto := fs.String("proto", "tcp", "tcp, udp, sctp, dns-udp or dns-tcp")
	addr := fs.String("addr", "", "ip:port or name:port")
	name := fs.String("name", "", "for dns: the name to resolve (default: the pod record of 10.244.0.1)")
	timeout := fs.Duration("timeout", time.Second, "give up after this long")
	_ = fs.Parse(args)
	ap, err := resolveAddr(*addr, *timeout)
	if err != nil {
		return err
	}
	p := strings.ToUpper(*proto)
	if dnsProto, ok := strings.CutPrefix(p, "DNS-"); ok {
		q := *name
		if q == "" {
			q = probe.PodRecord(netip.MustParseAddr("10.244.0.1"), "default")
		}
		ip, err := probe.ProbeDNS(probe.Protocol(dnsProto), ap, q, *timeout)
		var netErr net.Error
		if errors.As(err, &netErr) {
			// No answer: the query or its reply did not get through.
			return errors.Join(errors.New("blocked or unreachable"), err)
		}
		if err != nil {
			return err
		}
		fmt.Println(ip)
		return nil
	}
	peer, err := probe.Probe(probe.Protocol(p), ap, *timeout)
	if err != nil {
		return errors.Join(errors.New("blocked or unreachable"), err)
	}
	fmt.Println(peer)
	return nil
}

// resolveAddr parses ip:port, or resolves name:port (a Service's DNS name)
// to its first IPv4 address. The lookup gets its own timeout: the probe's
// is for the connection.
func resolveAddr(addr string, timeout time.Duration) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--addr: %w", err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--addr: port %q: %w", port, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, 2*time.Second))
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(p)), nil
}
