package iptables

import (
	"slices"
	"strings"
)

// Current is what one family's filter table holds of ours before a sync, as
// listed by `iptables -S`.
type Current struct {
	// Chains are the existing chains whose names start with ChainPrefix.
	Chains []string
	// Builtin holds the `-S` listing of each hooked built-in chain
	// (FORWARD, INPUT): "-P FORWARD ACCEPT", "-A FORWARD ...", ...
	Builtin map[string][]string
}

// jumpSpec is how `iptables -S` prints our jump from a built-in chain.
func jumpSpec(builtin, chain string) string { return "-A " + builtin + " -j " + chain }

// jumpFixes returns the restore lines that make chain the first rule of
// builtin exactly once: nothing when it already is, otherwise delete every
// copy and insert one at position 1.
func jumpFixes(cur Current, builtin, chain string) []string {
	spec := jumpSpec(builtin, chain)
	copies, first := 0, -1
	for _, line := range cur.Builtin[builtin] {
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		if first == -1 {
			first = 0
			if line == spec {
				first = 1
			}
		}
		if line == spec {
			copies++
		}
	}
	if copies == 1 && first == 1 {
		return nil
	}
	var out []string
	for range copies {
		out = append(out, "-D "+builtin+" -j "+chain)
	}
	return append(out, "-I "+builtin+" 1 -j "+chain)
}

// RestoreInput returns the iptables-restore script (for --noflush) that
// replaces the content of our chains with rs in one commit: every desired
// chain is declared (created, or flushed) and refilled, every other
// PALISADE chain is flushed and deleted, and the jumps from the built-in
// chains are fixed. Nothing else in the table is named, so nothing else
// changes.
func RestoreInput(rs *Ruleset, cur Current) string {
	var b strings.Builder
	b.WriteString("*filter\n")
	want := map[string]bool{}
	for _, c := range rs.Chains {
		want[c.Name] = true
		b.WriteString(":" + c.Name + " - [0:0]\n")
	}
	var stale []string
	for _, name := range cur.Chains {
		if !want[name] && strings.HasPrefix(name, ChainPrefix) {
			stale = append(stale, name)
		}
	}
	slices.Sort(stale)
	stale = slices.Compact(stale)
	// Declaring a stale chain flushes it, so the rules that jump to it
	// (all in our chains, all flushed here too) are gone before -X.
	for _, name := range stale {
		b.WriteString(":" + name + " - [0:0]\n")
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			b.WriteString("-A " + c.Name + " " + strings.Join(r.Args(rs.MarkBit), " ") + "\n")
		}
	}
	for _, h := range Hooks() {
		for _, line := range jumpFixes(cur, h.Builtin, h.Chain) {
			b.WriteString(line + "\n")
		}
	}
	for _, name := range stale {
		b.WriteString("-X " + name + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// UninstallInput returns the iptables-restore script (for --noflush) that
// removes our jumps and chains in one commit, or "" when there is nothing
// to remove.
func UninstallInput(cur Current) string {
	var lines []string
	for _, h := range Hooks() {
		spec := jumpSpec(h.Builtin, h.Chain)
		for _, line := range cur.Builtin[h.Builtin] {
			if line == spec {
				lines = append(lines, "-D "+h.Builtin+" -j "+h.Chain)
			}
		}
	}
	var chains []string
	for _, name := range cur.Chains {
		if strings.HasPrefix(name, ChainPrefix) {
			chains = append(chains, name)
		}
	}
	slices.Sort(chains)
	chains = slices.Compact(chains)
	if len(lines) == 0 && len(chains) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, name := range chains {
		b.WriteString(":" + name + " - [0:0]\n")
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	for _, name := range chains {
		b.WriteString("-X " + name + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
