package nft

import (
	"fmt"

	"github.com/google/nftables"

	"github.com/palisade-dev/palisade/dataplane/render"
)

// This file is the full rebuild: it replaces whatever the backend's table
// holds (an earlier agent's ruleset, a cold start, a ruleset left by an
// error) with a rendered one in one transaction, without unhooking the base
// chains the new ruleset keeps.
//
// Deleting a base chain and adding it again in one batch is atomic for the
// rules, not for the hooks: the kernel registers the new chain's hook while
// it prepares the batch and unregisters the old one only after the commit
// has switched to the new generation, in which the old chain is empty. A
// packet that started walking the hook's chains before the new hook was
// registered (nf_hook_slow takes the array of hooks once) and reaches the
// old chain after the switch meets an empty chain with policy accept, and
// never the new one: it passes judged by neither ruleset. A base chain that
// stays in place is only refilled, and each walk of a chain reads one
// generation, old or new.

// rebuild replaces the content of the table with rs in one transaction:
//
//  1. add the table (nothing happens if it exists) and update each base
//     chain of rs that exists with the same hook, priority and type (it
//     keeps its hook); regular chains rs has stay too;
//  2. flush every rule of the table, which drops the references rules hold
//     to sets and chains;
//  3. in each set or map rs has with the same type, delete the elements rs
//     lacks (a map element holds a reference to the chain it jumps to);
//     delete every other set and map;
//  4. delete every chain not kept: regular chains rs lacks, and base chains
//     rs lacks or hooks differently (those lose their hook, unavoidably);
//  5. add the chains not kept, the sets not kept with their elements, the
//     missing elements of the kept ones, then all rules.
//
// The kernel applies the batch as one transaction: each walk of a chain
// sees the old rules or the new ones, never none. But a walk that began
// before the switch to the new generation looks set elements up as of the
// moment of each lookup, and an element the transaction deletes (or an
// element of a map it deletes: deleting a map deactivates its elements) is
// gone for it from the switch on. Were the dispatch maps re-created, such a
// walk would miss its pod's entry in the old map and fall through to the
// base chain's policy, accept. So, as an incremental update does, the
// rebuild keeps every set and map whose type is unchanged and changes only
// the elements that differ: an element in both rulesets is never touched.
func (t *txn) rebuild(rs *render.Ruleset, cur *present) {
	t.conn.AddTable(t.table)
	chains := make(map[string]*nftables.Chain, len(cur.chains))
	for _, c := range cur.chains {
		chains[c.Name] = c
	}
	keptChains := make(map[string]bool)
	for i := range rs.Chains {
		want := chainObject(t.table, &rs.Chains[i])
		if old := chains[want.Name]; old != nil && sameHook(old, want) {
			keptChains[want.Name] = true
			if want.Hooknum != nil {
				// Sets the policy; the hook stays.
				t.conn.AddChain(want)
			}
		}
	}
	t.conn.FlushTable(t.table)
	sets := make(map[string]*presentSet, len(cur.sets))
	for i := range cur.sets {
		sets[cur.sets[i].set.Name] = &cur.sets[i]
	}
	missing := make(map[string][]nftables.SetElement)
	for i := range rs.Sets {
		s := &rs.Sets[i]
		want := setObject(t.table, s)
		old := sets[s.Name]
		if old == nil || !sameSetType(old, want) {
			continue
		}
		add, del := diffEncoded(old.elems, elements(s, s.Elements))
		if err := deleteElements(t.conn, want, del); err != nil {
			t.fail(fmt.Errorf("delete elements of %s: %w", s.Name, err))
		}
		missing[s.Name] = add
	}
	for _, s := range cur.sets {
		if _, kept := missing[s.set.Name]; !kept {
			t.conn.DelSet(&nftables.Set{Table: t.table, Name: s.set.Name})
		}
	}
	for _, c := range cur.chains {
		if !keptChains[c.Name] {
			t.conn.DelChain(&nftables.Chain{Table: t.table, Name: c.Name})
		}
	}
	for i := range rs.Chains {
		if !keptChains[rs.Chains[i].Name] {
			t.conn.AddChain(chainObject(t.table, &rs.Chains[i]))
		}
	}
	for i := range rs.Sets {
		s := &rs.Sets[i]
		add, kept := missing[s.Name]
		if !kept {
			t.addSet(s)
			continue
		}
		if err := addElements(t.conn, setObject(t.table, s), add); err != nil {
			t.fail(fmt.Errorf("add elements to %s: %w", s.Name, err))
		}
	}
	for i := range rs.Chains {
		t.addRules(&rs.Chains[i])
	}
}

// sameHook tells whether the listed chain old can stay as want: both are
// regular chains, or base chains of the same type, hook and priority (the
// kernel refuses to change those of an existing chain).
func sameHook(old, want *nftables.Chain) bool {
	if old.Hooknum == nil || want.Hooknum == nil {
		return old.Hooknum == nil && want.Hooknum == nil
	}
	return old.Priority != nil && *old.Hooknum == *want.Hooknum && *old.Priority == *want.Priority && old.Type == want.Type
}
