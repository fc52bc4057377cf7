package nft

import (
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
//  3. delete every set and map but those rs has with the same type and
//     the same elements (deleting a map drops the references its elements
//     hold to the chains they jump to);
//  4. delete every chain not kept: regular chains rs lacks, and base chains
//     rs lacks or hooks differently (those lose their hook, unavoidably);
//  5. add the chains and the sets not kept, then all rules.
//
// The kernel applies the batch as one transaction: each walk of a chain
// sees the old rules or the new ones, never none.
//
// An unchanged set stays because a set backend with a commit step (pipapo,
// which holds the port-range sets) publishes the elements a transaction
// adds only after the switch to the new generation (nf_tables_commit runs
// nft_set_commit_update last): a set created anew would look empty to the
// new rules for a moment and drop allowed packets. A changed set is
// replaced rather than edited: a walk that began before the switch runs the
// old rules but looks elements up as of the moment of each lookup, so it
// would meet the new elements of a set edited in place (a map element
// could send it to a chain added by this transaction, empty in the old
// generation, and the packet would pass). A replaced set keeps its old
// elements for the old rules.
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
	keptSets := cur.unchangedSets(t.table, rs)
	for _, s := range cur.sets {
		if !keptSets[s.set.Name] {
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
		if !keptSets[rs.Sets[i].Name] {
			t.addSet(&rs.Sets[i])
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
