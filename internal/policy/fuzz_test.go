package policy_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/policy/policytest"
)

// FuzzCompute feeds the model random and malformed clusters (decoded from the
// fuzz bytes by policytest.FuzzInput) and checks that it never panics, that
// its output does not depend on the order of its input, and that it decides
// every packet between the cluster's addresses as the oracle does (malformed
// parts fail closed in both). Seeds: f.Add below and testdata/fuzz/FuzzCompute.
func FuzzCompute(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("palisade"))
	f.Add([]byte{7, 1, 0, 0, 1, 0, 0, 2, 0, 0, 3, 4, 1, 1, 1, 2, 1, 3, 0, 2, 2, 3, 3, 1, 0, 5, 2, 1, 1, 3, 4, 0, 2, 1})
	f.Add([]byte{3, 2, 1, 2, 1, 0, 1, 2, 2, 5, 7, 0, 2, 3, 0, 4, 3, 0, 2, 1, 0, 3, 2, 9, 1, 2, 8, 3, 1, 1, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := policytest.FuzzInput(data)
		st := policy.Compute(in)
		if again := policy.Compute(in); !reflect.DeepEqual(st, again) {
			t.Fatalf("Compute is not deterministic:\n%+v\n%+v", st, again)
		}
		rev := in
		rev.Pods, rev.Policies, rev.AuditPolicies = slices.Clone(in.Pods), slices.Clone(in.Policies), slices.Clone(in.AuditPolicies)
		slices.Reverse(rev.Pods)
		slices.Reverse(rev.Policies)
		slices.Reverse(rev.AuditPolicies)
		if other := policy.Compute(rev); !reflect.DeepEqual(st, other) {
			t.Fatalf("Compute depends on input order:\n%+v\n%+v", st, other)
		}
		for _, p := range policytest.FuzzPackets(in) {
			if got, want := st.Allows(p), policytest.OracleAllows(in, p); got != want {
				t.Fatalf("%+v: model %v, oracle %v\npods: %+v\npolicies: %s\naudit: %s", p, got, want, in.Pods, policytest.Describe(in.Policies), policytest.Describe(in.AuditPolicies))
			}
			if got, want := st.Decide(p), policytest.OracleDecide(in, p); !reflect.DeepEqual(got, want) {
				t.Fatalf("%+v: model decides %+v, oracle %+v\npods: %+v\npolicies: %s\naudit: %s", p, got, want, in.Pods, policytest.Describe(in.Policies), policytest.Describe(in.AuditPolicies))
			}
		}
	})
}
