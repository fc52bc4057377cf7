package main

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

const suite = "Kubernetes NetworkPolicy e2e"

// netpolSpecs are the v1.37.2 suite's spec texts.
func netpolSpecs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("testdata/netpol-specs.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// selected is what ginkgo runs of names given the flags: it matches focus
// and skip against the suite's description and the spec's text.
func selected(t *testing.T, flags []string, names []string) []string {
	t.Helper()
	var focus, skip *regexp.Regexp
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--ginkgo.focus="); ok {
			focus = regexp.MustCompile(v)
		}
		if v, ok := strings.CutPrefix(f, "--ginkgo.skip="); ok {
			skip = regexp.MustCompile(v)
		}
	}
	var out []string
	for _, n := range names {
		text := suite + " " + n
		// The label filter leaves out the specs without the Feature:NetworkPolicy label.
		if focus.MatchString(text) && (skip == nil || !skip.MatchString(text)) && strings.Contains(n, "[Feature:NetworkPolicy]") {
			out = append(out, n)
		}
	}
	return out
}

func TestSubsetSpecsAreInTheSuite(t *testing.T) {
	all := map[string]bool{}
	for _, n := range netpolSpecs(t) {
		all[n] = true
	}
	for _, s := range subset {
		if !all[s.Name] {
			t.Errorf("not a v1.37.2 Netpol spec: %s", s.Name)
		}
	}
}

func TestGinkgoFlags(t *testing.T) {
	withSCTP := machine{Kernel: "6.1"}
	noSCTP := machine{Kernel: "6.18", NoSCTP: "no"}
	names := netpolSpecs(t)
	tests := []struct {
		name string
		sel  selection
		m    machine
		// want is how many of the 51 specs run.
		want int
	}{
		{"full, with SCTP", selection{Set: setFull, Backend: "nftables"}, withSCTP, 49},
		{"full, no SCTP", selection{Set: setFull, Backend: "nftables"}, noSCTP, 46},
		{"full, more skipped", selection{Set: setFull, Backend: "iptables", Skip: "named port"}, noSCTP, 43},
		{"focus", selection{Set: setFocus, Backend: "nftables", Focus: "default-deny"}, noSCTP, 3},
		{"subset nftables, with SCTP", selection{Set: setSubset, Backend: "nftables"}, withSCTP, len(subset)},
		{"subset nftables, no SCTP", selection{Set: setSubset, Backend: "nftables"}, noSCTP, len(subset) - 1},
		{"subset iptables", selection{Set: setSubset, Backend: "iptables"}, noSCTP, len(subsetFor("iptables"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags, err := tt.sel.ginkgoFlags(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if got := selected(t, flags, names); len(got) != tt.want {
				t.Errorf("flags %q select %d specs, want %d:\n%s", flags, len(got), tt.want, strings.Join(got, "\n"))
			}
		})
	}
}

func TestSubsetFocusSelectsExactlyTheSubset(t *testing.T) {
	for _, backend := range []string{"nftables", "iptables"} {
		flags, err := selection{Set: setSubset, Backend: backend}.ginkgoFlags(machine{})
		if err != nil {
			t.Fatal(err)
		}
		got := selected(t, flags, netpolSpecs(t))
		want := subsetFor(backend)
		if len(got) != len(want) {
			t.Fatalf("%s: %d selected, want %d", backend, len(got), len(want))
		}
		for i := range want {
			found := false
			for _, g := range got {
				found = found || g == want[i].Name
			}
			if !found {
				t.Errorf("%s: not selected: %s", backend, want[i].Name)
			}
		}
	}
}

func TestSelectionRejects(t *testing.T) {
	for name, s := range map[string]selection{
		"unknown set":         {Set: "most"},
		"focus on the subset": {Set: setSubset, Backend: "nftables", Focus: "x"},
		"focus set, no focus": {Set: setFocus},
		"subset, odd backend": {Set: setSubset, Backend: "ebpf"},
		"bad skip regexp":     {Set: setFull, Skip: "("},
		"bad focus regexp":    {Set: setFocus, Focus: "("},
	} {
		if _, err := s.ginkgoFlags(machine{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
