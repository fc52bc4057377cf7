package main

import (
	"fmt"
	"io"
	"strings"
)

// report is what the markdown says: one outcome per backend and how the
// run was made.
type report struct {
	Set        string
	K8sVersion string
	Revision   string
	Machine    machine
	// Command is what reproduces the run (make test-conformance).
	Command string
	// Seconds is the whole command's time, builds included, waiting for
	// the real-node lock not.
	Seconds         int
	LockWaitSeconds int
	Outcomes        []outcome
}

func (r report) problems() []string {
	var p []string
	for _, o := range r.Outcomes {
		p = append(p, o.Problems...)
	}
	return p
}

// write renders the report as markdown.
func (r report) write(w io.Writer) error {
	var b strings.Builder
	r.header(&b)
	r.results(&b)
	r.skipped(&b)
	r.failed(&b)
	if r.Set != setFocus {
		r.subsetSection(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r report) header(b *strings.Builder) {
	if r.Set == setFull {
		fmt.Fprintf(b, "# Upstream NetworkPolicy conformance (Kubernetes %s e2e, Netpol specs)\n\n", r.K8sVersion)
	} else {
		fmt.Fprintf(b, "# Upstream NetworkPolicy conformance, %s of the Netpol specs (Kubernetes %s e2e)\n\n", r.Set, r.K8sVersion)
	}
	fmt.Fprintf(b, "Written by `%s` (hack/test-conformance.sh, hack/conformance-report) from the e2e binary's JUnit\n", r.Command)
	b.WriteString("reports; run it again rather than editing this file.\n\n")
	fmt.Fprintf(b, "The specs are upstream's: `k8s.io/kubernetes/test/e2e/network/netpol` at %s, built by\n", r.K8sVersion)
	b.WriteString("`hack/setup-real-nodes.sh --conformance` as `netpol-e2e.test` (the same specs, framework and flags as\n")
	b.WriteString("`e2e.test`, compiled without the rest of the e2e suite; see `hack/tools/netpol-e2e`). They run against\n")
	b.WriteString("the local cluster on real nodes (two kubelets with containerd, runc, CNI ptp + host-local, kube-proxy\n")
	b.WriteString("in nftables mode; docs/real-nodes.md) with Palisade deployed from `config/default` as images, once per\n")
	switch r.Set {
	case setFull:
		b.WriteString("Palisade backend, selected as upstream CI selects them for a network plugin: focus `Netpol`, label\n")
		fmt.Fprintf(b, "filter `%s`.\n\n", labelFilter)
	case setSubset:
		b.WriteString("Palisade backend: the subset `make test` runs (listed below), with the label filter upstream CI uses\n")
		fmt.Fprintf(b, "for a network plugin, `%s`.\n\n", labelFilter)
	default:
		b.WriteString("Palisade backend: the Netpol specs CONFORMANCE_FOCUS picks, with the label filter upstream CI uses\n")
		fmt.Fprintf(b, "for a network plugin, `%s`.\n\n", labelFilter)
	}
	if len(r.Outcomes) > 0 {
		fmt.Fprintf(b, "Run %s UTC on kernel %s, Palisade %s.\n\n", r.Outcomes[0].Run.Start.UTC().Format("2006-01-02 15:04"), r.Machine.Kernel, r.Revision)
	}
	b.WriteString("Command (root; it takes `/tmp/palisade-realnodes.lock`, since one real-node cluster fits on a machine):\n\n")
	fmt.Fprintf(b, "    %s\n\n", r.Command)
	b.WriteString("which, per backend, brings up the cluster with `bin/local-cluster up --real-nodes --backend <backend>`,\n")
	b.WriteString("runs the specs and tears the cluster down. The specs' command:\n\n")
	for _, o := range r.Outcomes {
		fmt.Fprintf(b, "- %s:\n\n      %s\n\n", o.Backend, o.Command)
	}
}

func (r report) results(b *strings.Builder) {
	b.WriteString("## Results\n\n")
	b.WriteString("| Backend | Run | Passed | Failed | Skipped | Not selected | Specs took | In all (bring-up, teardown) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, o := range r.Outcomes {
		fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d | %s | %s |\n", o.Backend, o.ran(), len(o.Passed), len(o.Failed),
			o.skipped(), o.NotSelected, duration(int(o.Run.Seconds+0.5)), duration(o.WallSeconds))
	}
	fmt.Fprintf(b, "\nThe whole command, builds (cached) included: %s", duration(r.Seconds))
	if r.LockWaitSeconds > 0 {
		fmt.Fprintf(b, ", after %s waiting for another real-node cluster to go", duration(r.LockWaitSeconds))
	}
	b.WriteString(".\n\n")
	if p := r.problems(); len(p) > 0 {
		b.WriteString("**The run failed:**\n\n")
		for _, s := range p {
			fmt.Fprintf(b, "- %s\n", s)
		}
		b.WriteString("\n")
	}
}

func (r report) skipped(b *strings.Builder) {
	b.WriteString("## Skipped, and why\n\n")
	// One entry per reason, naming the backends it applies to: the
	// exclusions are the same on both unless the selection differs.
	type entry struct {
		reason   string
		specs    []string
		backends []string
	}
	var entries []*entry
	find := func(reason string, specs []string) *entry {
		for _, e := range entries {
			if e.reason == reason && strings.Join(e.specs, "\n") == strings.Join(specs, "\n") {
				return e
			}
		}
		e := &entry{reason: reason, specs: specs}
		entries = append(entries, e)
		return e
	}
	for _, o := range r.Outcomes {
		for _, g := range o.Excluded {
			e := find(g.Reason, names(g.Specs))
			e.backends = append(e.backends, o.Backend)
		}
		for _, sp := range o.Unexplained {
			e := find("skipped without a known reason: "+orNone(sp.Message), []string{sp.Name})
			e.backends = append(e.backends, o.Backend)
		}
	}
	if len(entries) == 0 {
		b.WriteString("Nothing.\n\n")
	}
	for _, e := range entries {
		fmt.Fprintf(b, "%d skipped (%s): %s.\n\n", len(e.specs), strings.Join(e.backends, ", "), e.reason)
		for _, n := range e.specs {
			fmt.Fprintf(b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	var notSelected []string
	for _, o := range r.Outcomes {
		if o.NotSelected > 0 {
			notSelected = append(notSelected, fmt.Sprintf("%s %d", o.Backend, o.NotSelected))
		}
	}
	if len(notSelected) > 0 {
		fmt.Fprintf(b, "Not selected (outside the %s selection, so not counted as skipped): %s.\n\n", r.Set, strings.Join(notSelected, ", "))
	}
}

func (r report) failed(b *strings.Builder) {
	b.WriteString("## Failed, and why\n\n")
	any := false
	for _, o := range r.Outcomes {
		for _, sp := range o.Failed {
			any = true
			fmt.Fprintf(b, "- %s, %s (%s): %s\n", o.Backend, sp.Name, sp.State, firstLine(sp.Message))
			if sp.Location != "" {
				fmt.Fprintf(b, "  at %s\n", sp.Location)
			}
		}
	}
	if !any {
		b.WriteString("Nothing.\n")
	} else {
		b.WriteString("\nEach backend's e2e.log in the report directory has the specs' full output.\n")
	}
	b.WriteString("\n")
}

// subsetSection lists the subset make test runs, with each spec's time in
// this run, so a full run also says what the subset costs.
func (r report) subsetSection(b *strings.Builder) {
	b.WriteString("## The subset `make test` runs\n\n")
	b.WriteString("`make test-conformance-subset` (part of `make test`) runs these specs, all of them on nftables and\n")
	b.WriteString("those marked on iptables, and fails when one fails or does not run. Time is this run's.\n\n")
	header, rule := "| Spec | Shows |", "|---|---|"
	for _, o := range r.Outcomes {
		header += " " + o.Backend + " |"
		rule += "---|"
	}
	b.WriteString(header + "\n" + rule + "\n")
	totals := make([]float64, len(r.Outcomes))
	for _, s := range subset {
		fmt.Fprintf(b, "| %s | %s |", shortName(s.Name), s.Why)
		for i, o := range r.Outcomes {
			cell := "-"
			if o.Backend == "nftables" || s.IPTables {
				cell = o.cell(s.Name, r.Machine)
				totals[i] += o.seconds(s.Name)
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("| **specs in all** | |")
	for _, t := range totals {
		fmt.Fprintf(b, " %s |", duration(int(t+0.5)))
	}
	b.WriteString("\n\n")
	for _, n := range coverageNotes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	if r.Machine.NoSCTP != "" {
		fmt.Fprintf(b, "- SCTP: the subset's SCTP connectivity spec is excluded on this kernel (%s, see Skipped); the\n", r.Machine.Kernel)
		b.WriteString("  specs that put SCTP in a policy without connecting over it run.\n")
	}
	b.WriteString("\n")
}

// cell is how a spec ended in this run, for the subset's table.
func (o outcome) cell(name string, m machine) string {
	if _, ok := m.excluded(name); ok {
		return "excluded (see Skipped)"
	}
	for _, sp := range o.Run.Specs {
		if sp.Name != name {
			continue
		}
		switch sp.State {
		case "passed":
			return fmt.Sprintf("passed, %s", duration(int(sp.Seconds+0.5)))
		case "skipped", "pending":
			return "not run"
		default:
			return fmt.Sprintf("**%s**, %s", sp.State, duration(int(sp.Seconds+0.5)))
		}
	}
	return "**not in the suite**"
}

func (o outcome) seconds(name string) float64 {
	for _, sp := range o.Run.Specs {
		if sp.Name == name {
			return sp.Seconds
		}
	}
	return 0
}

// shortName is a spec's text without what all Netpol specs' texts share.
func shortName(name string) string {
	name = strings.TrimPrefix(name, "[sig-network] Netpol ")
	name = strings.TrimSuffix(name, " [Feature:NetworkPolicy]")
	return strings.Replace(name, "NetworkPolicy between server and client ", "", 1)
}

func names(specs []spec) []string {
	out := make([]string, len(specs))
	for i, sp := range specs {
		out[i] = sp.Name
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// duration is "546 s" below ten minutes and "20 min 8 s" above.
func duration(seconds int) string {
	if seconds < 600 {
		return fmt.Sprintf("%d s", seconds)
	}
	return fmt.Sprintf("%d min %d s", seconds/60, seconds%60)
}
