package nft

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"

	"github.com/palisade-dev/palisade/dataplane/render"
)

// This file computes an incremental update: what differs between the applied
// ruleset and the desired one. It runs on every sync, so its cost must follow
// what changed, not the ruleset's size: chains and sets are paired by name
// without hashing (see pairByName), an unchanged chain or set costs one
// comparison of plain values (no maps, no encoding), and only changed sets
// are diffed, in one merge pass over their sorted elements. The socket budget is taken
// from the plan, not from both whole rulesets (encoding every element of
// both to size the socket made an update O(ruleset)).

// pairByName pairs the objects of two lists by name: at[j] is the index in
// old of next[j]'s name, or -1; removed lists the old indexes with no
// counterpart, in order. Rendered lists need no hashing: most syncs keep
// every name in place (pods come and go in set elements), and otherwise
// names are sorted after a fixed prefix (the base chains), which one merge
// pass pairs. Other lists take a map.
func pairByName(old, next []string, prefix int) (at, removed []int) {
	at = make([]int, len(next))
	if slices.Equal(old, next) {
		for j := range at {
			at[j] = j
		}
		return at, nil
	}
	if len(old) >= prefix && len(next) >= prefix && slices.Equal(old[:prefix], next[:prefix]) &&
		strictlySortedNames(old[prefix:]) && strictlySortedNames(next[prefix:]) {
		for j := range prefix {
			at[j] = j
		}
		i, j := prefix, prefix
		for i < len(old) && j < len(next) {
			switch {
			case old[i] == next[j]:
				at[j] = i
				i++
				j++
			case old[i] < next[j]:
				removed = append(removed, i)
				i++
			default:
				at[j] = -1
				j++
			}
		}
		for ; i < len(old); i++ {
			removed = append(removed, i)
		}
		for ; j < len(next); j++ {
			at[j] = -1
		}
		return at, removed
	}
	byName := make(map[string]int, len(old))
	for i, n := range old {
		byName[n] = i
	}
	kept := make(map[string]bool, len(next))
	for j, n := range next {
		kept[n] = true
		if i, ok := byName[n]; ok {
			at[j] = i
		} else {
			at[j] = -1
		}
	}
	for i, n := range old {
		if !kept[n] {
			removed = append(removed, i)
		}
	}
	return at, removed
}

func strictlySortedNames(names []string) bool {
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			return false
		}
	}
	return true
}

func chainNames(cs []render.Chain) (names []string, base int) {
	names = make([]string, len(cs))
	for i := range cs {
		names[i] = cs[i].Name
		if cs[i].IsBase() && base == i {
			base++
		}
	}
	return names, base
}

func setNames(ss []render.Set) []string {
	names := make([]string, len(ss))
	for i := range ss {
		names[i] = ss[i].Name
	}
	return names
}

// plan is an incremental update, ready to send.
type plan struct {
	// elems are the element changes of sets present in both rulesets,
	// encoded.
	elems []elemDiff
	// changed are chains whose rules changed (flushed, then refilled);
	// oldChanged their applied versions, in the same order.
	changed, oldChanged []*render.Chain
	removedChains       []*render.Chain
	removedSets         []*render.Set
	addedChains         []*render.Chain
	addedSets           []*render.Set
	// err makes the update fail (a set changed its type).
	err error
}

type elemDiff struct {
	set      *render.Set
	add, del []nftables.SetElement
}

// diffRulesets plans the update from old to next.
func diffRulesets(old, next *render.Ruleset) *plan {
	p := &plan{}
	setAt, setsRemoved := pairByName(setNames(old.Sets), setNames(next.Sets), 0)
	for j := range next.Sets {
		s := &next.Sets[j]
		if setAt[j] < 0 {
			p.addedSets = append(p.addedSets, s)
			continue
		}
		o := &old.Sets[setAt[j]]
		if o.Kind != s.Kind {
			p.err = errors.New("set " + s.Name + " changed its type")
			return p
		}
		add, del := diffElements(o.Elements, s.Elements)
		if len(add)+len(del) > 0 {
			p.elems = append(p.elems, elemDiff{set: s, add: elements(s, add), del: elements(s, del)})
		}
	}
	oldNames, oldBase := chainNames(old.Chains)
	nextNames, nextBase := chainNames(next.Chains)
	chainAt, chainsRemoved := pairByName(oldNames, nextNames, min(oldBase, nextBase))
	for j := range next.Chains {
		c := &next.Chains[j]
		if chainAt[j] < 0 {
			p.addedChains = append(p.addedChains, c)
			continue
		}
		if o := &old.Chains[chainAt[j]]; !sameRules(o, c) {
			p.changed = append(p.changed, c)
			p.oldChanged = append(p.oldChanged, o)
		}
	}
	for _, i := range chainsRemoved {
		p.removedChains = append(p.removedChains, &old.Chains[i])
	}
	for _, i := range setsRemoved {
		p.removedSets = append(p.removedSets, &old.Sets[i])
	}
	return p
}

// budget bounds the messages and bytes the plan sends.
func (p *plan) budget() budget {
	var b budget
	for _, d := range p.elems {
		b = b.plus(elementsBudget(d.add)).plus(elementsBudget(d.del))
	}
	for _, cs := range [][]*render.Chain{p.changed, p.removedChains, p.addedChains} {
		for _, c := range cs {
			b = b.plus(chainBudget(c))
		}
	}
	for _, ss := range [][]*render.Set{p.removedSets, p.addedSets} {
		for _, s := range ss {
			b = b.plus(setBudget(s))
		}
	}
	return b
}

// update sends only what differs between the applied ruleset and the
// desired one.
func (t *txn) update(old, next *render.Ruleset) {
	t.send(diffRulesets(old, next))
}

// send queues a planned update. The order inside the batch matters to the
// kernel's reference counting: element deletions (map entries jumping to
// chains about to go), then chain flushes (rules referring to sets and chains
// about to go), then deletions of chains and sets, then additions of chains,
// sets, elements and finally rules.
func (t *txn) send(p *plan) {
	if p.err != nil {
		t.fail(p.err)
		return
	}
	// 1. element deletions
	for _, d := range p.elems {
		if len(d.del) > 0 {
			if err := deleteElements(t.conn, setObject(t.table, d.set), d.del); err != nil {
				t.fail(fmt.Errorf("delete elements of %s: %w", d.set.Name, err))
			}
		}
	}
	// 2. flush changed and removed chains
	for _, o := range p.oldChanged {
		t.conn.FlushChain(chainObject(t.table, o))
	}
	for _, c := range p.removedChains {
		t.conn.FlushChain(chainObject(t.table, c))
	}
	// 3. delete removed chains and sets
	for _, c := range p.removedChains {
		t.conn.DelChain(chainObject(t.table, c))
	}
	for _, s := range p.removedSets {
		t.conn.DelSet(setObject(t.table, s))
	}
	// 4. add new chains, then new sets (map elements may jump to new chains)
	for _, c := range p.addedChains {
		t.conn.AddChain(chainObject(t.table, c))
	}
	for _, s := range p.addedSets {
		t.addSet(s)
	}
	// 5. element additions
	for _, d := range p.elems {
		if len(d.add) > 0 {
			if err := addElements(t.conn, setObject(t.table, d.set), d.add); err != nil {
				t.fail(fmt.Errorf("add elements to %s: %w", d.set.Name, err))
			}
		}
	}
	// 6. rules of new and changed chains
	for _, c := range p.addedChains {
		t.addRules(c)
	}
	for _, c := range p.changed {
		t.addRules(c)
	}
}

func sameRules(a, b *render.Chain) bool {
	return a.Hook == b.Hook && a.Priority == b.Priority && slices.Equal(a.Rules, b.Rules)
}

// diffElements returns the elements of next missing from old and those of
// old missing from next, each in its list's order. Rendered sets are
// strictly sorted (render.CompareElements), which takes one merge pass;
// other lists take maps.
func diffElements(old, next []render.Element) (add, del []render.Element) {
	if slices.Equal(old, next) {
		return nil, nil
	}
	if !strictlySorted(old) || !strictlySorted(next) {
		return diffElementsUnsorted(old, next)
	}
	i, j := 0, 0
	for i < len(old) && j < len(next) {
		switch c := render.CompareElements(old[i], next[j]); {
		case c == 0:
			i++
			j++
		case c < 0:
			del = append(del, old[i])
			i++
		default:
			add = append(add, next[j])
			j++
		}
	}
	del = append(del, old[i:]...)
	add = append(add, next[j:]...)
	return add, del
}

func strictlySorted(es []render.Element) bool {
	for i := 1; i < len(es); i++ {
		if render.CompareElements(es[i-1], es[i]) >= 0 {
			return false
		}
	}
	return true
}

func diffElementsUnsorted(old, next []render.Element) (add, del []render.Element) {
	in := make(map[render.Element]bool, len(old))
	for _, e := range old {
		in[e] = true
	}
	want := make(map[render.Element]bool, len(next))
	for _, e := range next {
		want[e] = true
		if !in[e] {
			add = append(add, e)
		}
	}
	for _, e := range old {
		if !want[e] {
			del = append(del, e)
		}
	}
	return add, del
}
