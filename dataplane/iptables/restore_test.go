package iptables_test

import (
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/dataplane/iptables"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

// minimal is a ruleset with only the fixed chains (no isolated pod).
func minimal() *iptables.Ruleset {
	return iptables.Render(pt.ClusterState(pt.BasePods()), iptables.IPv4, 0x10)
}

// tail returns the restore lines after our chains' rules: the jump fixes
// and the chain deletions.
func tail(script string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(script), "\n") {
		if strings.HasPrefix(l, "-I ") || strings.HasPrefix(l, "-D ") || strings.HasPrefix(l, "-X ") {
			out = append(out, l)
		}
	}
	return out
}

func TestRestoreInputFixesJumpsAndRemovesStaleChains(t *testing.T) {
	hooked := map[string][]string{
		"FORWARD": {"-P FORWARD ACCEPT", "-A FORWARD -j PALISADE-FORWARD", "-A FORWARD -j KUBE-FORWARD"},
		"INPUT":   {"-P INPUT ACCEPT", "-A INPUT -j PALISADE-INPUT"},
		"OUTPUT":  {"-P OUTPUT ACCEPT", "-A OUTPUT -j PALISADE-OUTPUT"},
	}
	cases := []struct {
		name string
		cur  iptables.Current
		want []string
	}{
		{"fresh node", iptables.Current{}, []string{"-I FORWARD 1 -j PALISADE-FORWARD", "-I INPUT 1 -j PALISADE-INPUT", "-I OUTPUT 1 -j PALISADE-OUTPUT"}},
		{"already hooked", iptables.Current{Builtin: hooked}, nil},
		{"someone inserted before us", iptables.Current{Builtin: map[string][]string{
			"FORWARD": {"-P FORWARD ACCEPT", "-A FORWARD -j KUBE-FORWARD", "-A FORWARD -j PALISADE-FORWARD"},
			"INPUT":   hooked["INPUT"],
			"OUTPUT":  hooked["OUTPUT"],
		}}, []string{"-D FORWARD -j PALISADE-FORWARD", "-I FORWARD 1 -j PALISADE-FORWARD"}},
		{"duplicated jump", iptables.Current{Builtin: map[string][]string{
			"FORWARD": hooked["FORWARD"],
			"INPUT":   {"-P INPUT ACCEPT", "-A INPUT -j PALISADE-INPUT", "-A INPUT -j PALISADE-INPUT"},
			"OUTPUT":  hooked["OUTPUT"],
		}}, []string{"-D INPUT -j PALISADE-INPUT", "-D INPUT -j PALISADE-INPUT", "-I INPUT 1 -j PALISADE-INPUT"}},
		{"stale chains", iptables.Current{Builtin: hooked, Chains: []string{
			iptables.ChainForward, iptables.ChainEgress, "PALISADE-PIN-0123456789", "PALISADE-SRC-0123456789",
		}}, []string{"-X PALISADE-PIN-0123456789", "-X PALISADE-SRC-0123456789"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			script := iptables.RestoreInput(minimal(), c.cur)
			if got := tail(script); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s\nfull script:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"), script)
			}
			for _, stale := range c.cur.Chains {
				if strings.HasPrefix(stale, "PALISADE-PIN") && !strings.Contains(script, ":"+stale+" - [0:0]\n") {
					t.Errorf("stale chain %s not flushed before deletion", stale)
				}
			}
			if !strings.HasPrefix(script, "*filter\n") || !strings.HasSuffix(script, "COMMIT\n") || strings.Count(script, "COMMIT") != 1 {
				t.Errorf("not one filter-table commit:\n%s", script)
			}
		})
	}
}

func TestUninstallInput(t *testing.T) {
	if got := iptables.UninstallInput(iptables.Current{Builtin: map[string][]string{"FORWARD": {"-P FORWARD ACCEPT", "-A FORWARD -j OTHER"}}}); got != "" {
		t.Errorf("nothing of ours, yet uninstall does:\n%s", got)
	}
	cur := iptables.Current{
		Chains: []string{iptables.ChainInput, iptables.ChainForward, iptables.ChainOutput, "PALISADE-IN-0123456789"},
		Builtin: map[string][]string{
			"FORWARD": {"-P FORWARD ACCEPT", "-A FORWARD -j PALISADE-FORWARD", "-A FORWARD -j OTHER"},
			"INPUT":   {"-P INPUT DROP", "-A INPUT -j PALISADE-INPUT"},
			"OUTPUT":  {"-P OUTPUT ACCEPT", "-A OUTPUT -j PALISADE-OUTPUT"},
		},
	}
	want := `*filter
:PALISADE-FORWARD - [0:0]
:PALISADE-IN-0123456789 - [0:0]
:PALISADE-INPUT - [0:0]
:PALISADE-OUTPUT - [0:0]
-D FORWARD -j PALISADE-FORWARD
-D INPUT -j PALISADE-INPUT
-D OUTPUT -j PALISADE-OUTPUT
-X PALISADE-FORWARD
-X PALISADE-IN-0123456789
-X PALISADE-INPUT
-X PALISADE-OUTPUT
COMMIT
`
	if got := iptables.UninstallInput(cur); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
