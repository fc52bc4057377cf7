package netnstest

import (
	"regexp"
	"strings"
	"testing"
)

// Firewall state as text, for tests that show which parts of it a backend
// changes: save or list the state, cut out what the backend owns (Without
// or Owned), and compare.

var (
	// Comments say how a tool prints the state, not what the state is:
	// iptables-save's timestamps, and nft's "# Warning: table ip filter is
	// managed by iptables-nft" that nft 1.0 prints for any table holding
	// xtables matches.
	comment = regexp.MustCompile(`(?m)^\s*#.*\n`)
	// Counters change with traffic, not with programming: iptables-save
	// prints chain counters as [packets:bytes], nft as "packets N bytes M".
	saveCounters = regexp.MustCompile(`\[\d+:\d+\]`)
	nftCounters  = regexp.MustCompile(`packets \d+ bytes \d+`)
)

// IptablesSave returns iptables-save (ip6tables-save when v6) of every
// table in the namespace, without its timestamp comments and with every
// counter zeroed.
func (ns *NS) IptablesSave(t testing.TB, v6 bool) string {
	t.Helper()
	bin := "iptables-save"
	if v6 {
		bin = "ip6tables-save"
	}
	out := comment.ReplaceAllString(ns.Run(t, bin), "")
	return saveCounters.ReplaceAllString(out, "[0:0]")
}

// NftRuleset returns `nft list ruleset` of the namespace without comments
// and with every counter zeroed.
func (ns *NS) NftRuleset(t testing.TB) string {
	t.Helper()
	out := comment.ReplaceAllString(ns.Run(t, "nft", "list", "ruleset"), "")
	return nftCounters.ReplaceAllString(out, "packets 0 bytes 0")
}

// Without returns an iptables-save or nft listing without the parts that
// contain mark: each line that contains it and, when such a line opens a
// block ("table inet x {", "chain X {"), the whole block. Blank lines
// (nft separates blocks with them) are dropped. An empty mark owns nothing.
func Without(listing, mark string) string {
	keep, _ := split(listing, mark)
	return keep
}

// Owned returns the parts of listing that Without removes, in order.
func Owned(listing, mark string) string {
	_, owned := split(listing, mark)
	return owned
}

func split(listing, mark string) (keep, owned string) {
	var k, o []string
	depth := 0 // > 0 inside an owned block
	for _, l := range strings.Split(listing, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		opens := strings.HasSuffix(strings.TrimSpace(l), "{")
		closes := strings.TrimSpace(l) == "}"
		switch {
		case depth > 0:
			o = append(o, l)
			if opens {
				depth++
			} else if closes {
				depth--
			}
		case mark != "" && strings.Contains(l, mark):
			o = append(o, l)
			if opens {
				depth = 1
			}
		default:
			k = append(k, l)
		}
	}
	return strings.Join(k, "\n"), strings.Join(o, "\n")
}

// Diff describes how got differs from want line by line: "-" for lines
// only in want, "+" for lines only in got, in the order of a longest common
// subsequence. It returns "" when they are equal.
func Diff(want, got string) string {
	if want == got {
		return ""
	}
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	// lcs[i][j] is the length of the longest common subsequence of a[i:]
	// and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			i, j = i+1, j+1
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			out.WriteString("+ " + b[j] + "\n")
			j++
		default:
			out.WriteString("- " + a[i] + "\n")
			i++
		}
	}
	return out.String()
}
