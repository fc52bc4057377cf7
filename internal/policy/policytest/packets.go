package policytest

import (
	"math/rand/v2"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-dev/palisade/internal/policy"
)

// RandomPackets draws up to n packets between the input's pod addresses and
// a few addresses outside the cluster, for differential tests of a renderer
// against the model and the oracle. Draws that mix address families are
// skipped, so fewer than n packets may come back.
func RandomPackets(r *rand.Rand, in policy.Input, n int) []policy.Packet {
	var ips []netip.Addr
	for _, p := range in.Pods {
		ips = append(ips, p.IPs...)
	}
	ips = append(ips, netip.MustParseAddr("172.16.0.1"), netip.MustParseAddr("10.0.255.1"), netip.MustParseAddr("fd00:ff::1"))
	var out []policy.Packet
	for range n {
		p := policy.Packet{
			Src:      ips[r.IntN(len(ips))],
			Dst:      ips[r.IntN(len(ips))],
			Protocol: []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP, "ICMP"}[r.IntN(4)],
			Port:     []uint16{0, 53, 80, 81, 443, 8080}[r.IntN(6)],
		}
		if p.Src.Is4() == p.Dst.Is4() {
			out = append(out, p)
		}
	}
	return out
}
