package textutil_test

import (
	"testing"

	"github.com/palisade-dev/palisade/internal/textutil"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in        string
		n         int
		cut, abbr string
	}{
		{"", 5, "", ""},
		{"hello", 5, "hello", "hello"},
		{"hello world", 5, "hello", "he..."},
	} {
		if got := textutil.Truncate(tc.in, tc.n); got != tc.cut {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.cut)
		}
		if got := textutil.Abbreviate(tc.in, tc.n); got != tc.abbr {
			t.Errorf("Abbreviate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.abbr)
		}
	}
}
