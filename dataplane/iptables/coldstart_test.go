package iptables_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/internal/testenv"
)

func TestColdStartGolden(t *testing.T) {
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		t.Run(fam.String(), func(t *testing.T) {
			got := iptables.ColdStartInput(fam, iptables.Current{})
			testenv.Golden(t, filepath.Join("testdata", "cold-start-"+fam.String()+".rules"), got, *update)
		})
	}
}

// TestFirstSyncReplacesColdStart: the first sync after a cold start
// rewrites the chain FORWARD jumps to (PALISADE-FORWARD) in the same commit
// that creates the real chains, and leaves the jump in place: no moment
// where FORWARD jumps to nothing, and no trace of the cold-start drop.
func TestFirstSyncReplacesColdStart(t *testing.T) {
	afterColdStart := iptables.Current{
		Chains: []string{iptables.ChainForward},
		Builtin: map[string][]string{
			"FORWARD": {"-P FORWARD ACCEPT", "-A FORWARD -j PALISADE-FORWARD"},
			"INPUT":   {"-P INPUT ACCEPT"},
			"OUTPUT":  {"-P OUTPUT ACCEPT"},
		},
	}
	script := iptables.RestoreInput(minimal(), afterColdStart)
	if got, want := tail(script), []string{"-I INPUT 1 -j PALISADE-INPUT", "-I OUTPUT 1 -j PALISADE-OUTPUT"}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("jump fixes %q, want %q (FORWARD's jump kept, INPUT's and OUTPUT's added)\n%s", got, want, script)
	}
	if !strings.Contains(script, ":"+iptables.ChainForward+" - [0:0]\n") {
		t.Errorf("the first sync does not flush %s, so the cold-start drop would stay:\n%s", iptables.ChainForward, script)
	}
	if strings.Contains(script, "cold start") || strings.Count(script, "COMMIT") != 1 {
		t.Errorf("not one commit free of the cold start:\n%s", script)
	}
	// The cold start itself hooks FORWARD only, never INPUT or OUTPUT.
	cs := iptables.ColdStartInput(iptables.IPv4, iptables.Current{})
	if strings.Contains(cs, "INPUT") || strings.Contains(cs, "OUTPUT") {
		t.Errorf("the cold start touches INPUT or OUTPUT:\n%s", cs)
	}
}
