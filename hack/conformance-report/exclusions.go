package main

import "strings"

// machine is what the specs' exclusions depend on: the kernel the pods
// run on.
type machine struct {
	// Kernel is the kernel's release (uname -r).
	Kernel string
	// NoSCTP is why the kernel cannot open an SCTP socket, empty when it can.
	NoSCTP string
}

// exclusion is a group of specs that do not run on this machine, and why.
type exclusion struct {
	// Match is a part of the specs' names.
	Match string
	// Skip is the --ginkgo.skip regexp that leaves them out; empty when
	// the selection (focus and label filter) already does.
	Skip string
	// Reason says why they cannot or need not run.
	Reason string
}

// exclusions are the specs that are left out, each with its reason: the
// report lists every skipped spec under one of them, and a skipped spec
// that none explains fails the run.
func (m machine) exclusions() []exclusion {
	ex := []exclusion{{
		Match: "[sig-network] Netpol API ",
		Reason: "checks the API server's validation of NetworkPolicy objects, not their enforcement: " +
			"it has no Feature:NetworkPolicy label, so the label filter upstream CI uses for network " +
			"plugins (`Feature: containsAny NetworkPolicy`) leaves it out",
	}}
	if m.NoSCTP != "" {
		ex = append(ex, exclusion{
			Match: "[Feature:SCTPConnectivity]",
			Skip:  "SCTPConnectivity",
			Reason: "needs SCTP connections between pods, and kernel " + m.Kernel + " has no SCTP: " + m.NoSCTP +
				". The Netpol specs that put SCTP in a policy without connecting over it run",
		})
	}
	return ex
}

// excluded is the exclusion that explains a skipped spec, if one does.
func (m machine) excluded(name string) (exclusion, bool) {
	for _, e := range m.exclusions() {
		if strings.Contains(name, e.Match) {
			return e, true
		}
	}
	return exclusion{}, false
}

// skipRegexp is the --ginkgo.skip value that leaves out the exclusions
// the selection does not, empty when there are none.
func (m machine) skipRegexp() string {
	var skips []string
	for _, e := range m.exclusions() {
		if e.Skip != "" {
			skips = append(skips, e.Skip)
		}
	}
	return strings.Join(skips, "|")
}
