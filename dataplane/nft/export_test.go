package nft

import (
	"github.com/google/nftables"

	"github.com/palisade-dev/palisade/dataplane/render"
)

// EncodeElements exposes the element encoding to the external kernel tests,
// which compare it with what the kernel lists.
var EncodeElements = elements

// RebuildReplacedSets names the sets and maps of rs that a full rebuild
// would create or re-create over what the table in the network namespace
// behind fd holds, rather than keep.
func RebuildReplacedSets(fd int, rs *render.Ruleset) ([]string, error) {
	table := &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet}
	if table.Name == "" {
		table.Name = render.TableName
	}
	cur, err := listPresent([]nftables.ConnOption{nftables.WithNetNSFd(fd)}, table)
	if err != nil {
		return nil, err
	}
	kept := cur.unchangedSets(table, rs)
	var replaced []string
	for _, s := range rs.Sets {
		if !kept[s.Name] {
			replaced = append(replaced, s.Name)
		}
	}
	return replaced, nil
}
