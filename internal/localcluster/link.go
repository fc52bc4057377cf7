package localcluster

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// linkUp sets a link up in the calling thread's namespace.
func linkUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	return netlink.LinkSetUp(l)
}
