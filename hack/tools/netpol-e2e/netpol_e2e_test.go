// Package netpole2e is the upstream Kubernetes e2e suite's NetworkPolicy
// tests (k8s.io/kubernetes/test/e2e/network/netpol, the "Netpol" specs of
// e2e.test) as a test binary of their own: the same specs, framework and
// flags as e2e.test, without compiling the other few thousand specs.
// hack/setup-real-nodes.sh --conformance builds it in a wrapper module (as
// it does the node binaries) into the assets directory as netpol-e2e.test.
package netpole2e

import (
	"flag"
	"os"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/test/e2e/framework"
	"k8s.io/kubernetes/test/e2e/framework/config"

	// The specs.
	_ "k8s.io/kubernetes/test/e2e/network/netpol"

	// As e2e.test: framework hooks.
	_ "k8s.io/kubernetes/test/e2e/framework/debug/init"
	_ "k8s.io/kubernetes/test/e2e/framework/metrics/init"
	_ "k8s.io/kubernetes/test/e2e/framework/node/init"
	_ "k8s.io/kubernetes/test/utils/ktesting/format"
)

func TestMain(m *testing.M) {
	config.CopyFlags(config.Flags, flag.CommandLine)
	framework.RegisterCommonFlags(flag.CommandLine)
	framework.RegisterClusterFlags(flag.CommandLine)
	flag.Parse()
	framework.AfterReadingAllFlags(&framework.TestContext)
	os.Exit(m.Run())
}

func TestE2E(t *testing.T) {
	logs.InitLogs()
	defer logs.FlushLogs()
	klog.EnableContextualLogging(true)
	gomega.RegisterFailHandler(framework.Fail)
	suiteConfig, reporterConfig := framework.CreateGinkgoConfig()
	ginkgo.RunSpecs(t, "Kubernetes NetworkPolicy e2e", suiteConfig, reporterConfig)
}
