package iptables

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/palisade-dev/palisade/dataplane"
)

var _ dataplane.ColdStarter = (*Backend)(nil)

// coldStartComment marks the cold-start drop in `iptables -S`, so that an
// operator sees why the node forwards nothing new.
const coldStartComment = "palisade cold start: no policy synced yet"

// ColdStartRuleset is render.ColdStart for iptables: ChainForward alone,
// hooked from FORWARD, returning established and related packets and
// dropping the rest. It reuses ChainForward (not a chain of its own) so
// that the first sync's restore, which declares and refills ChainForward,
// replaces the cold start in the same commit that installs the real chains:
// the jump from FORWARD never points at a missing or half-filled chain.
// INPUT is not hooked: the node's own traffic is untouched.
func ColdStartRuleset(fam Family) *Ruleset {
	return &Ruleset{Family: fam, MarkBit: DefaultMarkBit, Chains: []Chain{{Name: ChainForward, Rules: []Rule{
		{CtState: "RELATED,ESTABLISHED", Target: Return},
		{Comment: coldStartComment, Target: Drop},
	}}}}
}

// ColdStartInput returns the iptables-restore script (for --noflush) that
// installs ColdStartRuleset on a node whose filter table holds cur, in one
// commit.
func ColdStartInput(fam Family, cur Current) string {
	rs := ColdStartRuleset(fam)
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, c := range rs.Chains {
		b.WriteString(":" + c.Name + " - [0:0]\n")
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			b.WriteString("-A " + c.Name + " " + strings.Join(r.Args(rs.MarkBit), " ") + "\n")
		}
	}
	for _, line := range jumpFixes(cur, "FORWARD", ChainForward) {
		b.WriteString(line + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// installed tells whether the table holds a chain of ours or a jump to one.
func (cur Current) installed() bool {
	if len(cur.Chains) > 0 {
		return true
	}
	for _, h := range Hooks() {
		for _, line := range cur.Builtin[h.Builtin] {
			if strings.Contains(line, " -j "+ChainPrefix) || strings.Contains(line, " -g "+ChainPrefix) {
				return true
			}
		}
	}
	return false
}

// Installed tells whether any family's filter table holds a PALISADE chain
// or a jump to one.
func (b *Backend) Installed(_ context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, found, err := b.currents()
	return found, err
}

func (b *Backend) currents() ([]Current, bool, error) {
	curs := make([]Current, len(b.tables))
	found := false
	for i, t := range b.tables {
		cur, err := t.current()
		if err != nil {
			return nil, false, err
		}
		curs[i] = cur
		found = found || cur.installed()
	}
	return curs, found, nil
}

// ColdStart installs ColdStartRuleset in every family, one restore each,
// unless some family already holds rules of ours (then nothing changes).
// A family that fails leaves the ones before it closed; the error tells
// the agent, which goes on to sync anyway.
func (b *Backend) ColdStart(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	curs, found, err := b.currents()
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("cold start: %s chains: %w", ChainPrefix, dataplane.ErrInstalled)
	}
	var errs []error
	for i, t := range b.tables {
		if err := t.apply(ctx, ColdStartInput(t.family, curs[i])); err != nil {
			errs = append(errs, fmt.Errorf("cold start %s: %w", t.family, err))
		}
	}
	return errors.Join(errs...)
}
