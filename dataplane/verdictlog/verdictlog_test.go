package verdictlog_test

import (
	"reflect"
	"testing"

	"github.com/palisade-dev/palisade/dataplane/verdictlog"
	"github.com/palisade-dev/palisade/internal/policy"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want verdictlog.Entry
		id   string
		ok   bool
	}{
		{"palisade:allow:in:0123456789", verdictlog.Entry{Verdict: policy.LogAllowed, Direction: policy.Ingress}, "0123456789", true},
		{"palisade:drop:eg:abc\x00", verdictlog.Entry{Verdict: policy.LogDropped, Direction: policy.Egress}, "abc", true},
		{"palisade:audit:in:x", verdictlog.Entry{Verdict: policy.LogAudited, Direction: policy.Ingress}, "x", true},
		{"palisade:allow:up:x", verdictlog.Entry{}, "", false},
		{"palisade:accept:in:x", verdictlog.Entry{}, "", false},
		{"palisade:allow:in:", verdictlog.Entry{}, "", false},
		{"palisade:allow:in:x:y", verdictlog.Entry{}, "", false},
		{"other:allow:in:x", verdictlog.Entry{}, "", false},
		{"", verdictlog.Entry{}, "", false},
	}
	for _, tc := range tests {
		got, id, ok := verdictlog.Parse(tc.in)
		if !reflect.DeepEqual(got, tc.want) || id != tc.id || ok != tc.ok {
			t.Errorf("verdictlog.Parse(%q) = %+v, %q, %v; want %+v, %q, %v", tc.in, got, id, ok, tc.want, tc.id, tc.ok)
		}
	}
}
