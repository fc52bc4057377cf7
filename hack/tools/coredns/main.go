// Command coredns is CoreDNS with only the plugins the local cluster's
// Corefile (internal/localcluster/manifests/coredns.yaml) uses.
// hack/setup-real-nodes.sh builds it in a throwaway module that requires
// the CoreDNS release of COREDNS_VERSION: leaving out the other plugins
// (and the cloud SDKs behind route53, azure, clouddns, tracing, ...)
// roughly halves the packages to compile on a first run.
package main

import (
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"

	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }
