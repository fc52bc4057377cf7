//go:build tools

// This file keeps dependencies that packages in progress will import pinned in
// go.mod. Remove an import once real code uses the package.
package tools

import (
	_ "github.com/coreos/go-iptables/iptables"
	_ "github.com/google/nftables"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/ti-mo/conntrack"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "sigs.k8s.io/controller-runtime/pkg/envtest"
)
