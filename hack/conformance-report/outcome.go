package main

import (
	"fmt"
	"regexp"
)

// outcome is one backend's run sorted by how each spec ended.
type outcome struct {
	Backend string
	Run     run
	Passed  []spec
	Failed  []spec
	// Excluded are the skipped specs an exclusion explains, by exclusion.
	Excluded []excludedGroup
	// Unexplained are the selected specs that were skipped for a reason
	// no exclusion gives (one that called Skip, say).
	Unexplained []spec
	// NotSelected counts the specs the focus left out.
	NotSelected int
	// WallSeconds is the backend's whole run: bring-up, specs, teardown.
	WallSeconds int
	// Command is the exact e2e command line.
	Command string
	// Problems are why the run does not count as a pass.
	Problems []string
}

type excludedGroup struct {
	exclusion
	Specs []spec
}

func (o outcome) skipped() int {
	n := len(o.Unexplained)
	for _, g := range o.Excluded {
		n += len(g.Specs)
	}
	return n
}

func (o outcome) ran() int { return len(o.Passed) + len(o.Failed) }

// classify sorts a backend's specs and finds what makes the run fail: a
// failed spec, a selected spec skipped without a known reason, a run of
// nothing, and for the subset, a subset spec that did not run.
func classify(r run, m machine, set, backend string) (outcome, error) {
	o := outcome{Backend: backend, Run: r}
	// The focus recorded in the report is the one ginkgo applied, to the
	// suite's description and the spec's text (ginkgo internal/focus.go).
	focus, err := regexp.Compile(r.Focus)
	if err != nil {
		return o, fmt.Errorf("the report's focus: %w", err)
	}
	groups := map[string]int{}
	for _, sp := range r.Specs {
		switch sp.State {
		case "passed":
			o.Passed = append(o.Passed, sp)
			continue
		case "skipped", "pending":
		default:
			o.Failed = append(o.Failed, sp)
			o.Problems = append(o.Problems, fmt.Sprintf("%s: %s %s", backend, sp.State, sp.Name))
			continue
		}
		if ex, ok := m.excluded(sp.Name); ok {
			i, seen := groups[ex.Match]
			if !seen {
				i = len(o.Excluded)
				groups[ex.Match] = i
				o.Excluded = append(o.Excluded, excludedGroup{exclusion: ex})
			}
			o.Excluded[i].Specs = append(o.Excluded[i].Specs, sp)
			continue
		}
		if !focus.MatchString(r.Suite + " " + sp.Name) {
			o.NotSelected++
			continue
		}
		o.Unexplained = append(o.Unexplained, sp)
		o.Problems = append(o.Problems, fmt.Sprintf("%s: skipped without a known reason (%s): %s", backend, orNone(sp.Message), sp.Name))
	}
	if o.ran() == 0 {
		o.Problems = append(o.Problems, fmt.Sprintf("%s: no spec ran (focus %q)", backend, r.Focus))
	}
	switch set {
	case setFull:
		if o.NotSelected > 0 {
			o.Problems = append(o.Problems, fmt.Sprintf("%s: %d Netpol specs were not selected by focus %q", backend, o.NotSelected, r.Focus))
		}
	case setSubset:
		o.Problems = append(o.Problems, o.subsetProblems(m)...)
	}
	return o, nil
}

// subsetProblems are the subset's specs that neither ran nor were
// excluded, so that a focus that stops matching (a spec renamed upstream)
// fails the run instead of passing with fewer specs.
func (o outcome) subsetProblems(m machine) []string {
	byName := map[string]spec{}
	for _, sp := range o.Run.Specs {
		byName[sp.Name] = sp
	}
	var problems []string
	want := 0
	for _, s := range subsetFor(o.Backend) {
		sp, ok := byName[s.Name]
		_, excluded := m.excluded(s.Name)
		if !excluded {
			want++
		}
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: subset spec not in the suite: %s", o.Backend, s.Name))
		case excluded:
		case sp.State == "skipped" || sp.State == "pending":
			problems = append(problems, fmt.Sprintf("%s: subset spec did not run: %s", o.Backend, s.Name))
		}
	}
	if o.ran() != want {
		problems = append(problems, fmt.Sprintf("%s: %d specs ran, want %d (the subset's specs that can run here)", o.Backend, o.ran(), want))
	}
	return problems
}

func orNone(s string) string {
	if s == "" {
		return "no message"
	}
	return s
}
