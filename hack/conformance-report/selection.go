package main

import (
	"fmt"
	"regexp"
	"strings"
)

// The sets of specs a run selects.
const (
	// setFull is every Netpol spec, selected as upstream CI selects them for
	// a network plugin.
	setFull = "full"
	// setSubset is the subset make test runs.
	setSubset = "subset"
	// setFocus is the Netpol specs a regexp picks (CONFORMANCE_FOCUS), for
	// trying a few while working on them.
	setFocus = "focus"
)

// labelFilter is the one upstream's network plugin jobs use: the specs that
// need a NetworkPolicy implementation carry the Feature:NetworkPolicy label.
const labelFilter = "Feature: containsAny NetworkPolicy"

// selection is which specs a backend's run asks for.
type selection struct {
	Set     string
	Backend string
	// Focus narrows setFocus, a regexp on the specs' text.
	Focus string
	// Skip leaves out more specs (CONFORMANCE_SKIP), a regexp.
	Skip string
}

func (s selection) validate() error {
	switch s.Set {
	case setFull, setSubset:
		if s.Set == setSubset && s.Backend != "nftables" && s.Backend != "iptables" {
			return fmt.Errorf("the subset is defined for the nftables and iptables backends, not %q", s.Backend)
		}
		if s.Focus != "" {
			return fmt.Errorf("a focus regexp narrows the %q set only", setFocus)
		}
	case setFocus:
		if s.Focus == "" {
			return fmt.Errorf("the %q set needs a focus regexp", setFocus)
		}
	default:
		return fmt.Errorf("unknown set %q (want %s, %s or %s)", s.Set, setFull, setSubset, setFocus)
	}
	for _, re := range []string{s.Focus, s.Skip} {
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("bad regexp: %w", err)
		}
	}
	return nil
}

// ginkgoFlags are the e2e binary's selection flags for the run.
func (s selection) ginkgoFlags(m machine) ([]string, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	focus := "Netpol"
	switch s.Set {
	case setFocus:
		focus = "Netpol.*(" + s.Focus + ")"
	case setSubset:
		var names []string
		for _, sp := range subsetFor(s.Backend) {
			names = append(names, regexp.QuoteMeta(sp.Name))
		}
		focus = strings.Join(names, "|")
	}
	flags := []string{"--ginkgo.focus=" + focus}
	skip := m.skipRegexp()
	if s.Skip != "" {
		skip = strings.Trim(skip+"|"+s.Skip, "|")
	}
	if skip != "" {
		flags = append(flags, "--ginkgo.skip="+skip)
	}
	return append(flags, "--ginkgo.label-filter="+labelFilter), nil
}
