package testenv

import (
	"strings"
	"testing"
)

func TestRootVerdict(t *testing.T) {
	for _, tc := range []struct {
		name           string
		euid           int
		required       bool
		wantRun, fails bool
	}{
		{"root runs", 0, false, true, false},
		{"root runs when required", 0, true, true, false},
		{"non-root skips", 1000, false, false, false},
		{"non-root fails when required", 1000, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, fail := rootVerdict(tc.euid, tc.required)
			if (msg == "") != tc.wantRun || fail != tc.fails {
				t.Fatalf("rootVerdict(%d, %v) = %q, %v", tc.euid, tc.required, msg, fail)
			}
			if tc.fails && !strings.Contains(msg, RequireKernelEnv) {
				t.Errorf("failure %q does not name %s", msg, RequireKernelEnv)
			}
		})
	}
}
