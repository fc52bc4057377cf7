package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func passed(name string) spec  { return spec{Name: name, State: "passed", Seconds: 10} }
func skipped(name string) spec { return spec{Name: name, State: "skipped"} }

// subsetRun is a run of the subset on backend where every spec the machine
// can run passed, but for the one at index lost (if any): the focus did not
// match it, as when upstream renamed it.
func subsetRun(t *testing.T, backend string, m machine, lost int) run {
	t.Helper()
	var specs []spec
	var focus []string
	for i, s := range subsetFor(backend) {
		_, excluded := m.excluded(s.Name)
		switch {
		case i == lost:
			specs = append(specs, skipped(s.Name))
			continue
		case excluded:
			specs = append(specs, skipped(s.Name))
		default:
			specs = append(specs, passed(s.Name))
		}
		focus = append(focus, regexp.QuoteMeta(s.Name))
	}
	specs = append(specs, skipped(tcpSpec("should support a 'default-deny-all' policy")))
	return run{Suite: suite, Focus: strings.Join(focus, "|"), Specs: specs}
}

func TestClassify(t *testing.T) {
	noSCTP := machine{Kernel: "6.18", NoSCTP: "no SCTP"}
	withSCTP := machine{Kernel: "6.1"}
	api := "[sig-network] Netpol API should support creating NetworkPolicy API operations"
	sctp := sctpSpec("should support a 'default-deny-ingress' policy")
	ddi := tcpSpec("should support a 'default-deny-ingress' policy")
	deleted := tcpSpec("should stop enforcing policies after they are deleted")
	tests := []struct {
		name    string
		set     string
		backend string
		m       machine
		run     run
		// ran, excluded and notSelected count specs.
		ran, excluded, notSelected int
		// problems are parts of the problems expected, one each.
		problems []string
	}{{
		name: "full, all pass", set: setFull, backend: "nftables", m: noSCTP,
		run: run{Suite: suite, Focus: "Netpol", Specs: []spec{skipped(api), passed(ddi), skipped(sctp)}},
		ran: 1, excluded: 2,
	}, {
		name: "full, a spec failed", set: setFull, backend: "nftables", m: noSCTP,
		run:      run{Suite: suite, Focus: "Netpol", Specs: []spec{passed(ddi), {Name: deleted, State: "failed", Message: "wrong"}}},
		ran:      2,
		problems: []string{"nftables: failed " + deleted},
	}, {
		name: "full, a spec timed out", set: setFull, backend: "iptables", m: noSCTP,
		run:      run{Suite: suite, Focus: "Netpol", Specs: []spec{{Name: deleted, State: "timedout"}}},
		ran:      1,
		problems: []string{"iptables: timedout " + deleted},
	}, {
		name: "SCTP skipped on a kernel that has it", set: setFull, backend: "nftables", m: withSCTP,
		run:      run{Suite: suite, Focus: "Netpol", Specs: []spec{passed(ddi), skipped(sctp)}},
		ran:      1,
		problems: []string{"skipped without a known reason (no message): " + sctp},
	}, {
		name: "a spec called Skip", set: setFull, backend: "nftables", m: noSCTP,
		run:      run{Suite: suite, Focus: "Netpol", Specs: []spec{passed(ddi), {Name: deleted, State: "skipped", Message: "not on local"}}},
		ran:      1,
		problems: []string{"skipped without a known reason (not on local)"},
	}, {
		name: "full, focus left specs out", set: setFull, backend: "nftables", m: noSCTP,
		run: run{Suite: suite, Focus: "default-deny", Specs: []spec{passed(ddi), skipped(deleted)}},
		ran: 1, notSelected: 1,
		problems: []string{"1 Netpol specs were not selected"},
	}, {
		name: "focus set, focus left specs out", set: setFocus, backend: "nftables", m: noSCTP,
		run: run{Suite: suite, Focus: "Netpol.*(default-deny)", Specs: []spec{passed(ddi), skipped(deleted)}},
		ran: 1, notSelected: 1,
	}, {
		name: "focus set, nothing matched", set: setFocus, backend: "nftables", m: noSCTP,
		run:         run{Suite: suite, Focus: "Netpol.*(no such spec)", Specs: []spec{skipped(ddi), skipped(deleted)}},
		notSelected: 2,
		problems:    []string{"nftables: no spec ran"},
	}, {
		name: "subset, all pass", set: setSubset, backend: "nftables", m: noSCTP,
		run: subsetRun(t, "nftables", noSCTP, -1),
		ran: len(subset) - 1, excluded: 1, notSelected: 1,
	}, {
		name: "subset on a kernel with SCTP", set: setSubset, backend: "nftables", m: withSCTP,
		run: subsetRun(t, "nftables", withSCTP, -1),
		ran: len(subset), notSelected: 1,
	}, {
		name: "subset iptables, all pass", set: setSubset, backend: "iptables", m: noSCTP,
		run: subsetRun(t, "iptables", noSCTP, -1),
		ran: len(subsetFor("iptables")), notSelected: 1,
	}, {
		name: "subset, the focus missed a spec", set: setSubset, backend: "nftables", m: noSCTP,
		run: subsetRun(t, "nftables", noSCTP, 0),
		ran: len(subset) - 2, excluded: 1, notSelected: 2,
		problems: []string{"subset spec did not run: " + ddi, "specs ran, want"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := classify(tt.run, tt.m, tt.set, tt.backend)
			if err != nil {
				t.Fatal(err)
			}
			excluded := 0
			for _, g := range o.Excluded {
				excluded += len(g.Specs)
			}
			if o.ran() != tt.ran || excluded != tt.excluded || o.NotSelected != tt.notSelected {
				t.Errorf("ran %d, excluded %d, not selected %d; want %d, %d, %d",
					o.ran(), excluded, o.NotSelected, tt.ran, tt.excluded, tt.notSelected)
			}
			if len(o.Problems) != len(tt.problems) {
				t.Fatalf("problems:\n%s\nwant %d", strings.Join(o.Problems, "\n"), len(tt.problems))
			}
			for i, want := range tt.problems {
				if !strings.Contains(o.Problems[i], want) {
					t.Errorf("problem %d: %q, want it to contain %q", i, o.Problems[i], want)
				}
			}
		})
	}
}

func TestClassifySubsetSpecRenamedUpstream(t *testing.T) {
	m := machine{Kernel: "6.18", NoSCTP: "no SCTP"}
	r := subsetRun(t, "iptables", m, -1)
	// Upstream renamed the first spec: the report has the new text, and the
	// subset's focus did not match it.
	r.Specs[0] = skipped(strings.Replace(r.Specs[0].Name, "should", "must", 1))
	o, err := classify(r, m, setSubset, "iptables")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"iptables: subset spec not in the suite: " + subset[0].Name,
		fmt.Sprintf("iptables: %d specs ran, want %d (the subset's specs that can run here)", len(subsetFor("iptables"))-1, len(subsetFor("iptables"))),
	}
	if strings.Join(o.Problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(o.Problems, "\n"), strings.Join(want, "\n"))
	}
}
