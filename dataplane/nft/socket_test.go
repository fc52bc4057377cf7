package nft

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/synth"
)

// sentBatch is what google/nftables sent for one transaction, captured
// with a test dial instead of a kernel socket.
type sentBatch struct {
	msgs, bytes int
	// elementLists are the lengths of the element-list attributes of the
	// element messages.
	elementLists []int
}

func capture(t *testing.T, build func(*txn)) sentBatch {
	t.Helper()
	var sent []netlink.Message
	conn, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		sent = append(sent, req...)
		return nil, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	tx := &txn{conn: conn, table: New().table}
	build(tx)
	if tx.err != nil {
		t.Fatal(tx.err)
	}
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	var b sentBatch
	for _, m := range sent {
		b.msgs++
		b.bytes += 16 + align4(len(m.Data))
		typ := int(m.Header.Type) & 0xff
		if typ != unix.NFT_MSG_NEWSETELEM && typ != unix.NFT_MSG_DELSETELEM {
			continue
		}
		attrs, err := netlink.UnmarshalAttributes(m.Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range attrs {
			if a.Type&^unix.NLA_F_NESTED == unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				b.elementLists = append(b.elementLists, len(a.Data))
			}
		}
	}
	return b
}

// bigRuleset is a small cluster's ruleset plus sets far past what one
// netlink attribute holds.
func bigRuleset(n int) *render.Ruleset {
	c := synth.New(synth.Shape{Pods: 1000, Intents: 100})
	st := policy.Compute(c.Input())
	rs := render.Render(&st)
	var p6, vmap []render.Element
	for i := range n {
		// Every other address, so that no two ranges merge.
		a := netip.AddrFrom16([16]byte{0xfd, 0, 2, 0, 13: byte(i >> 15), 14: byte(i >> 7), 15: byte(i << 1)})
		p6 = append(p6, render.Element{Addr: a, AddrLast: a})
		vmap = append(vmap, render.Element{Addr: netip.AddrFrom4([4]byte{10, 70, byte(i >> 8), byte(i)}), Jump: rs.Chains[len(rs.Chains)-1].Name})
	}
	rs.Sets = append(rs.Sets, render.Set{Name: "zz-peer6", Kind: render.SetAddr6, Elements: p6},
		render.Set{Name: "zz-vmap4", Kind: render.MapAddr4, Elements: vmap})
	return rs
}

// presentOf is what the kernel would list of rs.
func presentOf(rs *render.Ruleset) *present {
	table := &nftables.Table{Name: render.TableName, Family: nftables.TableFamilyINet}
	p := &present{}
	for i := range rs.Chains {
		p.chains = append(p.chains, chainObject(table, &rs.Chains[i]))
	}
	for i := range rs.Sets {
		s := &rs.Sets[i]
		p.sets = append(p.sets, presentSet{set: setObject(table, s), elems: elements(s, s.Elements)})
	}
	return p
}

// TestBudgetCoversBatch: the socket budget bounds what the library really
// sends, for a rebuild and for an update, and no element list comes near
// the 64 KiB an attribute can hold.
func TestBudgetCoversBatch(t *testing.T) {
	small, big := bigRuleset(10), bigRuleset(6000)
	cases := []struct {
		name  string
		need  budget
		build func(*txn)
	}{
		{"rebuild", budget{msgs: 5, bytes: 5 * msgOverhead}.plus(rulesetBudget(big)), func(tx *txn) { tx.rebuild(big, &present{}) }},
		// Over a table holding another ruleset: its chains and sets are
		// deleted in the same batch.
		{"rebuild/over", budget{msgs: 5, bytes: 5 * msgOverhead}.plus(presentOf(small).budget()).plus(rulesetBudget(big)),
			func(tx *txn) { tx.rebuild(big, presentOf(small)) }},
		{"grow", budget{msgs: 5, bytes: 5 * msgOverhead}.plus(rulesetBudget(big)).plus(rulesetBudget(small)), func(tx *txn) { tx.update(small, big) }},
		{"shrink", budget{msgs: 5, bytes: 5 * msgOverhead}.plus(rulesetBudget(big)).plus(rulesetBudget(small)), func(tx *txn) { tx.update(big, small) }},
		// What Apply reserves for an update: the plan's own budget.
		{"grow/plan", budget{msgs: 5, bytes: 5 * msgOverhead}.plus(diffRulesets(small, big).budget()), func(tx *txn) { tx.update(small, big) }},
		{"shrink/plan", budget{msgs: 5, bytes: 5 * msgOverhead}.plus(diffRulesets(big, small).budget()), func(tx *txn) { tx.update(big, small) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sent := capture(t, c.build)
			if sent.msgs > c.need.msgs || sent.bytes > c.need.bytes {
				t.Errorf("sent %d messages, %d bytes; budget %d messages, %d bytes", sent.msgs, sent.bytes, c.need.msgs, c.need.bytes)
			}
			if len(sent.elementLists) < 3 {
				t.Errorf("%d element messages: the 6000-element sets were not split", len(sent.elementLists))
			}
			for _, n := range sent.elementLists {
				if n > maxElementListBytes {
					t.Errorf("element list of %d bytes, over %d", n, maxElementListBytes)
				}
			}
			t.Logf("%d messages, %d bytes (budget %d, %d)", sent.msgs, sent.bytes, c.need.msgs, c.need.bytes)
		})
	}
}

// TestElementChunks: runs stay under the limit, cover every element in
// order, and never separate an interval end from its start.
func TestElementChunks(t *testing.T) {
	for _, n := range []int{0, 1, 999, 1000, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := &render.Set{Name: "p", Kind: render.SetAddr4}
			for i := range n {
				a := netip.AddrFrom4([4]byte{10, byte(i >> 15), byte(i >> 7), byte(i << 1)})
				s.Elements = append(s.Elements, render.Element{Addr: a, AddrLast: a})
			}
			es := elements(s, s.Elements)
			var joined []nftables.SetElement
			for _, part := range elementChunks(es) {
				if len(part) == 0 || part[0].IntervalEnd {
					t.Fatalf("run starts with an interval end or is empty (%d elements)", len(part))
				}
				if b := elementListBytes(part); b > maxElementListBytes {
					t.Fatalf("run of %d bytes", b)
				}
				joined = append(joined, part...)
			}
			if len(joined) != len(es) {
				t.Fatalf("runs hold %d elements, want %d", len(joined), len(es))
			}
			for i := range es {
				if string(joined[i].Key) != string(es[i].Key) || joined[i].IntervalEnd != es[i].IntervalEnd {
					t.Fatalf("element %d out of order", i)
				}
			}
		})
	}
}
