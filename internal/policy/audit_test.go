package policy_test

import (
	"reflect"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/policy/policytest"
)

func TestAuditKeys(t *testing.T) {
	k := policy.AuditKey("x", "p")
	if k != "audit:x/p" || !policy.IsAuditKey(k) {
		t.Fatalf("AuditKey = %q", k)
	}
	for _, c := range []struct {
		key, want string
		audit     bool
	}{{"audit:x/p", "x/p", true}, {"x/p", "x/p", false}, {"audit:", "", true}, {"x/audit:p", "x/audit:p", false}} {
		if got, audit := policy.SplitAuditKey(c.key); got != c.want || audit != c.audit {
			t.Errorf("SplitAuditKey(%q) = %q, %v; want %q, %v", c.key, got, audit, c.want, c.audit)
		}
	}
}

// TestAuditSemantics: audit-only pods accept everything and log what their
// audit policies would allow or drop; an enforce policy on the same pod
// takes over entirely, also when it has the audit policy's name.
func TestAuditSemantics(t *testing.T) {
	aSel := policytest.Selecting(map[string]string{"app": "a"})
	fromB := policytest.IngressRule(policytest.Peers(policytest.PodPeer(map[string]string{"app": "b"})), policytest.TCP(80))
	auditP := policytest.Policy("x", "p", aSel, fromB)
	dec := func(v policy.LogVerdict, keys ...string) []policy.Decision {
		return []policy.Decision{{Direction: policy.Ingress, Verdict: v, Policies: keys}}
	}
	tests := []struct {
		name    string
		enforce []*networkingv1.NetworkPolicy
		p       policy.Packet
		allow   bool
		want    []policy.Decision
	}{
		{"audit allows", nil, policytest.Packet(xb, xa, tcpP, 80), true, dec(policy.LogAllowed, "audit:x/p")},
		{"audit would drop", nil, policytest.Packet(xb, xa, tcpP, 81), true, dec(policy.LogAudited, "audit:x/p")},
		{"audit would drop ipv6", nil, policytest.Packet(ya6, xa6, udpP, 53), true, dec(policy.LogAudited, "audit:x/p")},
		{"enforce with the same name takes over", []*networkingv1.NetworkPolicy{policytest.Policy("x", "p", aSel)}, policytest.Packet(xb, xa, tcpP, 80), false, dec(policy.LogDropped, "x/p")},
		{"enforce allows", []*networkingv1.NetworkPolicy{policytest.Policy("x", "q", aSel, policytest.IngressRule(nil, policytest.TCP(81)))}, policytest.Packet(xb, xa, tcpP, 81), true, dec(policy.LogAllowed, "x/q")},
		{"unselected pod logs nothing", nil, policytest.Packet(xa, xb, tcpP, 81), true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := fixture(tc.enforce...)
			in.AuditPolicies = []*networkingv1.NetworkPolicy{auditP}
			st := policy.Compute(in)
			if got := st.Allows(tc.p); got != tc.allow {
				t.Errorf("Allows = %v, want %v", got, tc.allow)
			}
			if got := st.Decide(tc.p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
			if got := policytest.OracleDecide(in, tc.p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("OracleDecide = %+v, want %+v", got, tc.want)
			}
			for _, pr := range st.Policies {
				if pr.Audit != policy.IsAuditKey(pr.Key) {
					t.Errorf("policy %s: Audit = %v", pr.Key, pr.Audit)
				}
				if pr.Audit && len(tc.enforce) > 0 {
					t.Errorf("audit policy %s kept although an enforce policy selects all its pods", pr.Key)
				}
			}
		})
	}
}
