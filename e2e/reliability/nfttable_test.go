package reliability

import (
	"strings"
	"testing"
)

func TestCanonicalTable(t *testing.T) {
	const sorted = `table inet palisade {
	map ingress4 {
		type ipv4_addr : verdict
		elements = { 10.0.0.1 : jump in-a,
			     10.0.0.2 : jump in-b }
	}

	set peer4-a {
		type ipv4_addr
		flags interval
		elements = { 198.18.0.1, 198.18.0.2 }
	}

	chain in-a {
		jump pin-1
		jump pin-2
	}

	chain in-b {
		accept
	}
}
`
	// The same table as an incremental sync leaves it: chain in-a created
	// after in-b, the map's elements in another hash order.
	const appended = `table inet palisade {
	set peer4-a {
		type ipv4_addr
		flags interval
		elements = { 198.18.0.2,
			     198.18.0.1 }
	}

	map ingress4 {
		type ipv4_addr : verdict
		elements = { 10.0.0.2 : jump in-b, 10.0.0.1 : jump in-a }
	}

	chain in-b {
		accept
	}

	chain in-a {
		jump pin-1
		jump pin-2
	}
}
`
	// Rules of a chain in another order: another table.
	reordered := strings.Replace(sorted, "jump pin-1\n\t\tjump pin-2", "jump pin-2\n\t\tjump pin-1", 1)
	// One element fewer: another table.
	fewer := strings.Replace(sorted, "elements = { 10.0.0.1 : jump in-a,\n\t\t\t     10.0.0.2 : jump in-b }", "elements = { 10.0.0.1 : jump in-a }", 1)
	if reordered == sorted || fewer == sorted {
		t.Fatal("the variants of the listing equal it: fix the replacements")
	}
	want := canonicalTable(sorted)
	for _, tc := range []struct {
		name    string
		listing string
		equal   bool
	}{
		{"same listing", sorted, true},
		{"blocks and elements in creation order", appended, true},
		{"rules of a chain reordered", reordered, false},
		{"element missing", fewer, false},
		{"absent table", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := canonicalTable(tc.listing); (got == want) != tc.equal {
				t.Errorf("canonical forms equal = %v, want %v\nwant:\n%s\ngot:\n%s", got == want, tc.equal, want, got)
			}
		})
	}
}
