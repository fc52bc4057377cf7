package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/bench/internal/netenv"
	"github.com/palisade-dev/palisade/bench/stats"
	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/synth"
)

const (
	dpIperfPort   = 5201
	dpConnectPort = 9000
)

var (
	dpClientIP = netip.MustParseAddr("10.250.0.1")
	dpServerIP = netip.MustParseAddr("10.250.0.2")
)

// dpState is the node state with n allowed peers of the server: the client
// plus n-1 synthetic pods, half of them local (so the dispatch maps hold
// n/2 addresses too).
func dpState(n int) policy.State {
	in := policy.Input{NodeName: synth.LocalNode, Namespaces: []policy.Namespace{policytest.Namespace("dp", nil)}}
	in.Pods = append(in.Pods,
		policy.Pod{Namespace: "dp", Name: "server", NodeName: synth.LocalNode, Labels: map[string]string{"app": "server"}, IPs: []netip.Addr{dpServerIP}},
		policy.Pod{Namespace: "dp", Name: "client", NodeName: synth.LocalNode, Labels: map[string]string{"role": "client"}, IPs: []netip.Addr{dpClientIP}})
	for i := range n - 1 {
		p := policy.Pod{Namespace: "dp", Name: fmt.Sprintf("peer-%d", i), NodeName: "node-1", Labels: map[string]string{"role": "client"}, IPs: []netip.Addr{synth.PodIP(i)}}
		if i%2 == 1 {
			p.NodeName = synth.LocalNode
			p.Labels["app"] = "server"
		}
		in.Pods = append(in.Pods, p)
	}
	in.Policies = []*networkingv1.NetworkPolicy{policytest.Policy("dp", "server",
		policytest.Selecting(map[string]string{"app": "server"}),
		policytest.IngressRule(policytest.Peers(networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}),
			policytest.TCP(dpIperfPort), policytest.TCP(dpConnectPort)))}
	return policy.Compute(in)
}

// measureDatapath is measurement 4: throughput and new-connection rate
// between two pods through the node, without and with our rules, all
// configurations interleaved round by round in the same run.
func measureDatapath(ctx context.Context, cfg *config, res *Results) error {
	if _, err := exec.LookPath("iperf3"); err != nil {
		return fmt.Errorf("iperf3 not installed (hack/bench.sh installs it)")
	}
	env := netenv.New()
	defer func() { _ = env.Close() }()
	node, err := env.NewNode("dp-node")
	if err != nil {
		return err
	}
	client, err := env.AddPod(node, "dp-client", dpClientIP)
	if err != nil {
		return err
	}
	server, err := env.AddPod(node, "dp-server", dpServerIP)
	if err != nil {
		return err
	}
	// Servers: iperf3 pinned to CPU 1, and a Go accept loop for the connect rate.
	srv := exec.Command("ip", "netns", "exec", server.Name, "taskset", "-c", "1", "iperf3", "-s", "-p", fmt.Sprint(dpIperfPort))
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var ln net.Listener
	if err := server.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", dpConnectPort))
		return err
	}); err != nil {
		return err
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	time.Sleep(300 * time.Millisecond)

	nftB := nft.New(nft.WithNetNSFd(node.Fd))
	var iptB *iptables.Backend
	if err := node.Do(func() error {
		var err error
		iptB, err = iptables.New(iptables.WithFamilies(iptables.IPv4))
		return err
	}); err != nil {
		return fmt.Errorf("iptables backend: %w", err)
	}
	clear := func() error {
		_ = nftB.Uninstall(ctx)
		_ = node.Do(func() error { return iptB.Uninstall(ctx) })
		_, _ = node.Exec("nft", "delete", "table", "inet", "pbn-baseline")
		return nil
	}
	type dpConfig struct {
		name  string
		apply func() (rules, elems int, err error)
	}
	states := map[int]policy.State{1000: dpState(1000), 10000: dpState(10000)}
	grown := false
	configs := []dpConfig{{"baseline (conntrack on, no palisade table)", func() (int, int, error) {
		out, err := node.Exec("nft", "add table inet pbn-baseline; add chain inet pbn-baseline forward { type filter hook forward priority 0; policy accept; }; add rule inet pbn-baseline forward ct state established,related accept")
		if err != nil {
			return 0, 0, fmt.Errorf("baseline table: %w: %s", err, out)
		}
		return 1, 0, nil
	}}}
	for _, n := range []int{1000, 10000} {
		st := states[n]
		configs = append(configs, dpConfig{fmt.Sprintf("nftables, %dk allowed peers", n/1000), func() (int, int, error) {
			rs := render.Render(&st)
			nftB.ForceFullSync()
			if _, err := nftB.Apply(ctx, rs); err != nil {
				// Too big for one netlink message (see M2b): reach it in
				// steps of 2k peers, as an agent would through updates.
				grown = true
				nftB.ForceFullSync()
				if _, err := nftB.Apply(ctx, render.Render(&policy.State{NodeName: synth.LocalNode})); err != nil {
					return 0, 0, err
				}
				for k := 2000; k < n; k += 2000 {
					part := dpState(k)
					if _, err := nftB.Apply(ctx, render.Render(&part)); err != nil {
						return 0, 0, fmt.Errorf("grow to %d peers: %w", k, err)
					}
				}
				if _, err := nftB.Apply(ctx, rs); err != nil {
					return 0, 0, err
				}
			}
			r, e := rs.Counts()
			return r, e, nil
		}})
	}
	for _, n := range []int{1000, 10000} {
		st := states[n]
		configs = append(configs, dpConfig{fmt.Sprintf("iptables, %dk allowed peers", n/1000), func() (int, int, error) {
			var stats struct{ rules int }
			err := node.Do(func() error { s, err := iptB.Sync(ctx, &st); stats.rules = s.Rules; return err })
			return stats.rules, 0, err
		}})
	}
	rounds, iperfSecs, connSecs := 5, 4, 2*time.Second
	if cfg.quick {
		rounds, iperfSecs, connSecs = 2, 1, 700*time.Millisecond
	}
	gbps := make([][]float64, len(configs))
	conns := make([][]float64, len(configs))
	sizes := make([][2]int, len(configs))
	failed := make([]string, len(configs))
	for r := range rounds {
		for i, c := range configs {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			_ = clear()
			rules, elems, err := c.apply()
			if err != nil {
				failed[i] = err.Error()
				continue
			}
			sizes[i] = [2]int{rules, elems}
			g, err := iperf(client, iperfSecs)
			if err != nil {
				failed[i] = "iperf3: " + err.Error()
				continue
			}
			gbps[i] = append(gbps[i], g)
			rate, err := connectRate(client, connSecs)
			if err != nil {
				failed[i] = "connect: " + err.Error()
				continue
			}
			conns[i] = append(conns[i], rate)
			cfg.logf("datapath round %d %s: %.2f Gbit/s, %.0f conn/s", r+1, c.name, g, rate)
		}
	}
	_ = clear()
	base := stats.Summarize(gbps[0])
	baseC := stats.Summarize(conns[0])
	if base.N == 0 || baseC.N == 0 {
		return fmt.Errorf("baseline not measured: %s", failed[0])
	}
	for i, c := range configs {
		row := DPRow{Config: c.name, Gbps: stats.Summarize(gbps[i]), ConnPerSec: stats.Summarize(conns[i]), Rules: sizes[i][0], Elements: sizes[i][1]}
		if row.Gbps.N > 0 {
			row.GbpsRatio, row.ConnectRatio = row.Gbps.Median/base.Median, row.ConnPerSec.Median/baseC.Median
		}
		if failed[i] != "" {
			res.Errors = append(res.Errors, fmt.Sprintf("M4 %s: %s", c.name, failed[i]))
		}
		res.Datapath = append(res.Datapath, row)
	}
	setup := fmt.Sprintf("2 pod netns through a node netns; iperf3 1 TCP stream %ds, connect loop %s; %d interleaved rounds", iperfSecs, connSecs, rounds)
	if grown {
		setup += "; the 10k nftables ruleset was reached through incremental syncs (its full sync exceeds one netlink message, see M2b)"
	}
	for i, c := range configs[1:] {
		i++
		if len(gbps[i]) == 0 || len(conns[i]) == 0 {
			continue
		}
		var tr, cr []float64
		for k := range min(len(gbps[i]), len(gbps[0])) {
			tr = append(tr, 100*gbps[i][k]/gbps[0][k])
		}
		for k := range min(len(conns[i]), len(conns[0])) {
			cr = append(cr, 100*conns[i][k]/conns[0][k])
		}
		id := fmt.Sprintf("M4-%d", i)
		tm := &Metric{ID: id + "a", Name: "Throughput vs baseline: " + c.name, Setup: setup, Unit: "%", Stat: "median", Summary: stats.Summarize(tr), HigherIsBetter: true}
		cm := &Metric{ID: id + "b", Name: "Connect rate vs baseline: " + c.name, Setup: setup, Unit: "%", Stat: "median", Summary: stats.Summarize(cr), HigherIsBetter: true}
		if strings.HasPrefix(c.name, "nftables") {
			tm.Target, tm.TargetValue = "≥ 97% of baseline", 97
			cm.Target, cm.TargetValue = "≥ 95% of baseline", 95
		} else {
			tm.Target, cm.Target = "reported (how iptables degrades)", "reported (how iptables degrades)"
		}
		res.add(tm)
		res.add(cm)
	}
	return nil
}

// iperf runs one iperf3 client from the pod, pinned to CPU 0, and returns
// the received throughput in Gbit/s.
func iperf(client *netenv.Pod, secs int) (float64, error) {
	out, err := exec.Command("ip", "netns", "exec", client.Name, "taskset", "-c", "0", "iperf3", "-c", dpServerIP.String(),
		"-p", fmt.Sprint(dpIperfPort), "-t", fmt.Sprint(secs), "-J").Output()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, err
	}
	if r.Error != "" {
		return 0, fmt.Errorf("%s", r.Error)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

// connectRate opens new TCP connections from the pod to the server as fast
// as one thread can for d and returns completed handshakes per second.
func connectRate(client *netenv.Pod, d time.Duration) (float64, error) {
	var n int
	var elapsed time.Duration
	err := client.Do(func() error {
		dst := netip.AddrPortFrom(dpServerIP, dpConnectPort)
		start := time.Now()
		for time.Since(start) < d {
			ok, err := netenv.TCPConnect(dst, 200)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("connection to %s refused or dropped", dst)
			}
			n++
		}
		elapsed = time.Since(start)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}
