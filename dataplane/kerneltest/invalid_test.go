package kerneltest

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

// checkInvalidDropped shows that segments conntrack calls invalid (here a
// SYN+FIN, a flag combination no TCP stack sends) are dropped for policed
// pods even when the policy allows their port, and pass for pods no policy
// selects. A plain SYN on the same path is the control.
func checkInvalidDropped(t *testing.T, c *cluster, b dataplane.Backend) {
	cases := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		synFin   bool // whether SYN+FIN reaches x/a
	}{
		{"unpoliced", nil, true},
		{"policed, port allowed", []*networkingv1.NetworkPolicy{pt.Policy("x", "web", pt.Selecting(app("a")), pt.IngressRule(nil, pt.TCP(80)))}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			syncPolicies(t, c, b, tc.policies)
			c.forget(t)
			for _, v6 := range []bool{false, true} {
				src, dst := c.addr("y/d", v6), c.addr("x/a", v6)
				for _, seg := range []struct {
					what  string
					flags byte
					want  bool
				}{
					{"SYN", netnstest.TCPSyn, true},
					{"SYN+FIN", netnstest.TCPSyn | netnstest.TCPFin, tc.synFin},
				} {
					got, err := netnstest.RawTCP(c.ns("y/d"), c.ns("x/a"), src, dst, 80, seg.flags)
					if err != nil {
						t.Fatalf("%s %s -> %s: %v", seg.what, src, dst, err)
					}
					if got != seg.want {
						t.Errorf("%s %s -> %s:80 arrived=%v, want %v", seg.what, src, dst, got, seg.want)
					}
				}
			}
		})
	}
}
