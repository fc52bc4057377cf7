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

// present is what the backend's table holds before a full rebuild, as the
// kernel lists it. The agent is the only writer of its table, so nothing
// changes it between the listing and the transaction; if something did,
// the transaction fails (a deletion of something gone) and the next sync
// rebuilds again.
type present struct {
	chains []*nftables.Chain
	// sets are the named sets and maps; anonymous sets belong to their
	// rules and go with them.
	sets []*nftables.Set
}

// listPresent lists the chains and sets of table; none when the table does
// not exist.
func listPresent(opts []nftables.ConnOption, table *nftables.Table) (*present, error) {
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	exists, err := tableExists(conn, table)
	if err != nil || !exists {
		return &present{}, err
	}
	p := &present{}
	chains, err := conn.ListChainsOfTableFamily(table.Family)
	if err != nil {
		return nil, fmt.Errorf("list chains of inet %s: %w", table.Name, err)
	}
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == table.Name {
			p.chains = append(p.chains, c)
		}
	}
	sets, err := conn.GetSets(table)
	if err != nil {
		return nil, fmt.Errorf("list sets of inet %s: %w", table.Name, err)
	}
	for _, s := range sets {
		if !s.Anonymous {
			p.sets = append(p.sets, s)
		}
	}
	return p, nil
}

// budget bounds the messages and bytes that deleting what is present takes.
func (p *present) budget() budget {
	n := len(p.chains) + len(p.sets)
	return budget{msgs: n, bytes: n * msgOverhead}
}

// rebuild replaces the content of the table with rs in one transaction:
//
//  1. add the table (nothing happens if it exists) and update each base
//     chain of rs that exists with the same hook, priority and type (it
//     keeps its hook);
//  2. flush every rule of the table, which drops the references rules hold
//     to sets and chains;
//  3. delete every set and map, which drops the references map elements
//     hold to the chains they jump to;
//  4. delete every other chain: regular chains, and base chains rs lacks or
//     hooks differently (those lose their hook as before, unavoidably);
//  5. add the chains not kept, the sets with their elements, then all rules.
//
// The kernel applies the batch as one transaction: each walk of a chain
// sees the old rules or the new ones, never none.
func (t *txn) rebuild(rs *render.Ruleset, cur *present) {
	t.conn.AddTable(t.table)
	existing := make(map[string]*nftables.Chain, len(cur.chains))
	for _, c := range cur.chains {
		existing[c.Name] = c
	}
	kept := make(map[string]bool)
	for i := range rs.Chains {
		want := chainObject(t.table, &rs.Chains[i])
		if old := existing[want.Name]; old != nil && want.Hooknum != nil && sameHook(old, want) {
			t.conn.AddChain(want)
			kept[want.Name] = true
		}
	}
	t.conn.FlushTable(t.table)
	for _, s := range cur.sets {
		t.conn.DelSet(&nftables.Set{Table: t.table, Name: s.Name})
	}
	for _, c := range cur.chains {
		if !kept[c.Name] {
			t.conn.DelChain(&nftables.Chain{Table: t.table, Name: c.Name})
		}
	}
	for i := range rs.Chains {
		if !kept[rs.Chains[i].Name] {
			t.conn.AddChain(chainObject(t.table, &rs.Chains[i]))
		}
	}
	for i := range rs.Sets {
		t.addSet(&rs.Sets[i])
	}
	for i := range rs.Chains {
		t.addRules(&rs.Chains[i])
	}
}

// sameHook tells whether the listed chain old is a base chain that want
// can update in place: same type, hook and priority (the kernel refuses to
// change those of an existing chain).
func sameHook(old, want *nftables.Chain) bool {
	return old.Hooknum != nil && old.Priority != nil &&
		*old.Hooknum == *want.Hooknum && *old.Priority == *want.Priority && old.Type == want.Type
}
