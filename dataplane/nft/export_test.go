package nft

import (
	"github.com/google/nftables"

	"github.com/palisade-dev/palisade/dataplane/render"
)

// EncodeElements exposes the element encoding to the external kernel tests,
// which compare it with what the kernel lists.
var EncodeElements = elements

// RebuildElementChanges returns how many elements a full rebuild of rs
// would add to and delete from the sets the table in the network namespace
// behind fd holds; a set it would re-create counts all its elements as
// added.
func RebuildElementChanges(fd int, rs *render.Ruleset) (add, del int, err error) {
	table := &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet}
	if table.Name == "" {
		table.Name = render.TableName
	}
	cur, err := listPresent([]nftables.ConnOption{nftables.WithNetNSFd(fd)}, table)
	if err != nil {
		return 0, 0, err
	}
	for i := range rs.Sets {
		s := &rs.Sets[i]
		want := elements(s, s.Elements)
		kept := false
		for j := range cur.sets {
			if old := &cur.sets[j]; old.set.Name == s.Name && sameSetType(old, setObject(table, s)) {
				a, d := diffEncoded(old.elems, want)
				add, del, kept = add+len(a), del+len(d), true
			}
		}
		if !kept {
			add += len(want)
		}
	}
	return add, del, nil
}
