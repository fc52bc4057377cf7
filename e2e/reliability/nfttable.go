package reliability

import (
	"slices"
	"strings"
)

// canonicalTable rewrites an `nft list table` listing so that two listings
// compare equal exactly when the tables enforce the same thing. The kernel
// lists sets, maps and chains in creation order, and the agent's incremental
// syncs create new ones after the old, while a from-scratch build creates
// them sorted; a hash set lists its elements in hash order. Neither order
// means anything, so blocks are sorted by their header and elements sorted
// within their set. The order of rules within a chain does mean something
// (first match wins) and is kept.
func canonicalTable(listing string) string {
	lines := strings.Split(strings.TrimRight(listing, "\n"), "\n")
	var head, tail []string
	var blocks [][]string
	var cur []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case cur == nil && strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, "\t\t") && strings.HasSuffix(l, "{"):
			cur = []string{l}
		case cur != nil && l == "\t}":
			blocks = append(blocks, append(cur, l))
			cur = nil
		case cur != nil && strings.Contains(l, "elements = {"):
			joined := l
			for !strings.HasSuffix(strings.TrimSpace(joined), "}") && i+1 < len(lines) {
				i++
				joined += " " + strings.TrimSpace(lines[i])
			}
			cur = append(cur, canonicalElements(joined)...)
		case cur != nil:
			cur = append(cur, l)
		case l == "" && len(blocks) > 0:
			// blank line between blocks
		case len(blocks) == 0:
			head = append(head, l)
		default:
			tail = append(tail, l)
		}
	}
	if cur != nil { // truncated listing: keep what there is
		blocks = append(blocks, cur)
	}
	slices.SortStableFunc(blocks, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	out := head
	for _, b := range blocks {
		out = append(out, b...)
	}
	return strings.Join(append(out, tail...), "\n") + "\n"
}

// canonicalElements turns `elements = { a, b,  c }` (joined from its
// continuation lines) into one sorted element per line.
func canonicalElements(joined string) []string {
	indent := joined[:len(joined)-len(strings.TrimLeft(joined, "\t"))]
	body := strings.TrimSpace(joined)
	body = strings.TrimPrefix(body, "elements = {")
	body = strings.TrimSuffix(body, "}")
	var elems []string
	for _, e := range strings.Split(body, ",") {
		if e = strings.TrimSpace(e); e != "" {
			elems = append(elems, indent+"\t"+e)
		}
	}
	slices.Sort(elems)
	return append(append([]string{indent + "elements = {"}, elems...), indent+"}")
}
