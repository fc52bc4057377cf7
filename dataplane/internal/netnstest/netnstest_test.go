package netnstest_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// TestWiring proves the topology carries every kind of probe (local pods,
// a pod behind another node, the node itself, both families) and that a
// probe tells a drop from a pass: the same probes fail once the node drops
// forwarded traffic.
func TestWiring(t *testing.T) {
	testenv.RequireRoot(t)
	a, b := netnstest.NewNode(t, "node-a", 1), netnstest.NewNode(t, "node-b", 2)
	netnstest.Connect(t, a, b)
	p1, p2 := a.AddPod(t, 10, true), a.AddPod(t, 11, true)
	r := b.AddPod(t, 10, true)
	for _, ns := range []*netnstest.NS{p1.NS, p2.NS, r.NS, a.NS} {
		ns.Serve(t, []int{80}, []int{53})
	}
	var probes []netnstest.Probe
	pair := func(from, to *netnstest.Pod) {
		for i := range from.IPs() {
			for _, pr := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
				port := map[corev1.Protocol]int{corev1.ProtocolTCP: 80, corev1.ProtocolUDP: 53, corev1.ProtocolSCTP: 90}[pr]
				probes = append(probes, netnstest.Probe{From: from.NS, To: to.NS, Src: from.IPs()[i], Dst: to.IPs()[i], Protocol: pr, Port: port})
			}
		}
	}
	pair(p1, p2)
	pair(p2, p1)
	pair(r, p1)
	pair(p1, r)
	forwarded := len(probes)
	for _, ip := range p1.IPs() {
		probes = append(probes, netnstest.Probe{From: a.NS, Src: a.IP4, Dst: ip, Protocol: corev1.ProtocolTCP, Port: 80})
	}
	probes[len(probes)-1].Src = a.IP6
	probes = append(probes, netnstest.Probe{From: p1.NS, Src: p1.IP4, Dst: a.IP4, Protocol: corev1.ProtocolTCP, Port: 80})

	check := func(want func(i int) bool) {
		t.Helper()
		got, errs := netnstest.ReachAll(probes)
		for i, p := range probes {
			if errs[i] != nil {
				t.Errorf("%s: %v", p, errs[i])
			} else if got[i] != want(i) {
				t.Errorf("%s: reached=%v, want %v", p, got[i], want(i))
			}
		}
	}
	netnstest.WaitReachable(t, probes)
	check(func(int) bool { return true })
	a.Run(t, "nft", "add table inet pdtest")
	a.Run(t, "nft", "add chain inet pdtest f { type filter hook forward priority 0; policy drop; }")
	check(func(i int) bool { return i >= forwarded })
}
