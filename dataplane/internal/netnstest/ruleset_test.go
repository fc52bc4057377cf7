package netnstest_test

import (
	"testing"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
)

func TestWithoutAndOwned(t *testing.T) {
	nft := "table inet other {\n\tchain keep {\n\t\tjump PAL-X\n\t}\n}\ntable inet pal {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n\tchain c {\n\t}\n}\ntable ip x {\n}"
	save := "*filter\n:FORWARD ACCEPT [0:0]\n:PAL-F - [0:0]\n-A FORWARD -j PAL-F\n-A FORWARD -j DROP\nCOMMIT"
	for _, tc := range []struct {
		name, in, mark, without, owned string
	}{
		{"nft table", nft, "table inet pal {",
			"table inet other {\n\tchain keep {\n\t\tjump PAL-X\n\t}\n}\ntable ip x {\n}",
			"table inet pal {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n\tchain c {\n\t}\n}"},
		{"nft line", nft, "PAL-",
			"table inet other {\n\tchain keep {\n\t}\n}\ntable inet pal {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n\tchain c {\n\t}\n}\ntable ip x {\n}",
			"\t\tjump PAL-X"},
		{"iptables-save", save, "PAL-",
			"*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DROP\nCOMMIT",
			":PAL-F - [0:0]\n-A FORWARD -j PAL-F"},
		{"empty mark owns nothing", save, "", save, ""},
		{"blank lines dropped", "a {\n\n\tb\n}\n\nc", "a", "c", "a {\n\tb\n}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := netnstest.Without(tc.in, tc.mark); got != tc.without {
				t.Errorf("Without:\n%s\nwant\n%s", got, tc.without)
			}
			if got := netnstest.Owned(tc.in, tc.mark); got != tc.owned {
				t.Errorf("Owned:\n%s\nwant\n%s", got, tc.owned)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct{ want, got, diff string }{
		{"a\nb", "a\nb", ""},
		{"a\nb\nc", "a\nc", "- b\n"},
		{"a\nc", "a\nb\nc", "+ b\n"},
		{"a\nb", "a\nx", "+ x\n- b\n"},
	} {
		if d := netnstest.Diff(tc.want, tc.got); d != tc.diff {
			t.Errorf("Diff(%q, %q) = %q, want %q", tc.want, tc.got, d, tc.diff)
		}
	}
}
