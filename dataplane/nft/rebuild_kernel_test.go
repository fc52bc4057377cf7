package nft_test

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// handlePattern finds the table, chain, set and map lines of `nft -a list
// table`.
var handlePattern = regexp.MustCompile(`(?m)^\s*((?:table inet|chain|set|map) \S+) \{ # handle (\d+)$`)

// handles returns the kernel's handle of the table and of each chain, set
// and map, by kind and name ("chain egress"). The
// kernel gives every object it creates a new handle, so an unchanged handle
// means the object stayed in place.
func handles(t *testing.T, ns *netnstest.NS) map[string]string {
	t.Helper()
	out := ns.Run(t, "nft", "-a", "list", "table", "inet", render.TableName)
	h := map[string]string{}
	for _, m := range handlePattern.FindAllStringSubmatch(out, -1) {
		h[m[1]] = m[2]
	}
	return h
}

// requireKept fails unless the table and the named objects ("chain
// egress") have the handles they had in before.
func requireKept(t *testing.T, step string, before, after map[string]string, objects ...string) {
	t.Helper()
	for _, name := range append([]string{"table inet " + render.TableName}, objects...) {
		if before[name] == "" || after[name] != before[name] {
			t.Errorf("%s: %s has handle %q, was %q: the rebuild re-created it", step, name, after[name], before[name])
		}
	}
}

func chains(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "chain " + n
	}
	return out
}

// setsOf names the sets and maps of rs as handles does, without those of
// except.
func setsOf(rs *render.Ruleset, except ...string) []string {
	var out []string
	for _, s := range rs.Sets {
		if !slices.Contains(except, s.Name) {
			kind := "set "
			if s.Kind.IsMap() {
				kind = "map "
			}
			out = append(out, kind+s.Name)
		}
	}
	return out
}

// requireFresh fails unless ns holds exactly what a first sync of st on a
// bare node leaves.
func requireFresh(t *testing.T, step string, ns *netnstest.NS, st *policy.State) {
	t.Helper()
	ref := netnstest.New(t, "ref")
	if _, err := nft.New(nft.WithNetNSFd(ref.Fd)).Sync(context.Background(), st); err != nil {
		t.Fatalf("%s: reference: %v", step, err)
	}
	if got, want := listTable(t, ns), listTable(t, ref); got != want {
		t.Errorf("%s: the table differs from a fresh one:\n--- got\n%s\n--- fresh\n%s", step, got, want)
	}
	// The rebuild tells the elements it keeps by comparing the kernel's
	// listing with its own encoding: over the table it just wrote, it
	// must find every element in place.
	if add, del, err := nft.RebuildElementChanges(ns.Fd, render.Render(st)); err != nil || add+del > 0 {
		t.Errorf("%s: a rebuild of the same state would add %d and delete %d elements (%v), want none", step, add, del, err)
	}
}

// TestFullRebuildKeepsHooks: a full rebuild (a new backend, as after an
// agent restart) refills the table and the base chains it has instead of
// deleting and re-adding them, whose hooks would be re-registered and let a
// packet in flight pass judged by neither ruleset, and keeps the sets and
// maps both rulesets have, touching only the elements that differ (a walk
// in flight at the switch would miss the elements of a re-created map). It
// still leaves exactly the new ruleset, whatever the table held before: the
// cold start, maps jumping to group chains the new state drops, chains,
// sets and maps no ruleset has. A base chain hooked differently and a set
// of another type are replaced.
func TestFullRebuildKeepsHooks(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	ns := netnstest.New(t, "keep")
	forward := chains(render.ChainEgress, render.ChainIngress)

	if err := nft.New(nft.WithNetNSFd(ns.Fd)).ColdStart(ctx); err != nil {
		t.Fatal(err)
	}
	cold := handles(t, ns)
	oldSt := pt.ClusterState(pt.BasePods(), policies()...)
	if _, err := nft.New(nft.WithNetNSFd(ns.Fd)).Sync(ctx, oldSt); err != nil {
		t.Fatalf("first sync over the cold start: %v", err)
	}
	requireKept(t, "first sync over the cold start", cold, handles(t, ns), forward...)
	requireFresh(t, "first sync over the cold start", ns, oldSt)

	// The next state drops x/web: the group chain of x/a, which the
	// dispatch maps jump to, goes. x/b and y/c go and x/e comes: interval
	// sets lose a whole range and the end of another.
	base := pt.BasePods()
	nextPods := append([]policy.Pod{base[0], base[2]}, pt.Pod("x", "e", node, map[string]string{"app": "e"}, "10.100.1.9", "fd00:100::1:9"))
	nextSt := pt.ClusterState(nextPods, policies()[1:]...)
	oldRs, nextRs := render.Render(oldSt), render.Render(nextSt)
	if !dropsJumpTarget(oldRs, nextRs) {
		t.Fatal("no map element of the old ruleset jumps to a chain the new one lacks: the test checks nothing")
	}
	// Objects of no ruleset: a map jumping to a chain, a rule jumping to
	// it from a kept base chain, a set, a base chain, and input-egress
	// hooked at another priority.
	ns.Run(t, "nft", "add chain inet palisade stale\n"+
		"add rule inet palisade egress jump stale\n"+
		"add map inet palisade stalemap { type ipv4_addr : verdict; elements = { 10.9.9.9 : jump stale } }\n"+
		"add rule inet palisade ingress ip daddr vmap @stalemap\n"+
		"add set inet palisade staleset { type ipv4_addr; elements = { 10.9.9.8 } }\n"+
		"add chain inet palisade stalebase { type filter hook forward priority 5; policy drop; }\n"+
		"delete chain inet palisade input-egress\n"+
		"add chain inet palisade input-egress { type filter hook input priority 7; policy accept; }")
	before := handles(t, ns)
	if _, err := nft.New(nft.WithNetNSFd(ns.Fd)).Sync(ctx, nextSt); err != nil {
		t.Fatalf("rebuild over the old ruleset and stale objects: %v", err)
	}
	after := handles(t, ns)
	requireKept(t, "rebuild over the old ruleset", before, after,
		append(chains(render.ChainEgress, render.ChainIngress, render.ChainOutputMidStream), setsOf(nextRs)...)...)
	requireFresh(t, "rebuild over the old ruleset", ns, nextSt)
	if after["chain "+render.ChainInputEgress] == before["chain "+render.ChainInputEgress] {
		t.Errorf("input-egress kept its handle: the hook at another priority was not replaced")
	}

	// And back, over a set of the old ruleset's name and another type.
	retyped := ""
	for _, s := range oldRs.Sets {
		if nextRs.Set(s.Name) == nil && !s.Kind.IsMap() {
			retyped = s.Name
			break
		}
	}
	if retyped == "" {
		t.Fatal("the old ruleset has no set the new one lacks")
	}
	ns.Run(t, "nft", "add set inet palisade "+retyped+" { type inet_service; elements = { 22 } }")
	before = handles(t, ns)
	if _, err := nft.New(nft.WithNetNSFd(ns.Fd)).Sync(ctx, oldSt); err != nil {
		t.Fatalf("rebuild back: %v", err)
	}
	after = handles(t, ns)
	requireKept(t, "rebuild back", before, after, append(chains(render.ChainEgress, render.ChainIngress,
		render.ChainInputEgress, render.ChainOutputMidStream), setsOf(nextRs)...)...)
	requireFresh(t, "rebuild back", ns, oldSt)
	if after["set "+retyped] == before["set "+retyped] {
		t.Errorf("set %s of another type kept its handle: it was not replaced", retyped)
	}
}

// dropsJumpTarget tells whether a map element of old jumps to a chain next
// does not have.
func dropsJumpTarget(old, next *render.Ruleset) bool {
	for _, s := range old.Sets {
		for _, e := range s.Elements {
			if e.Jump != "" && next.Chain(e.Jump) == nil {
				return true
			}
		}
	}
	return false
}
