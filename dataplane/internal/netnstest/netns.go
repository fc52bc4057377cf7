// Package netnstest creates network namespaces for the dataplane's kernel
// tests: "node" namespaces with routed "pod" namespaces behind them (built
// by internal/netns, as the local cluster and the benchmarks build theirs),
// plus servers and probes that make real connections between them, and the
// firewall's state as text (ruleset.go) for tests that compare it. Every
// name starts with "pdt-" and every address lies in 10.100.0.0/16 or
// fd00:100::/48; everything is removed when the test ends. NewPrefixed and
// NewNodePrefixed use another prefix.
package netnstest

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/palisade-dev/palisade/internal/netns"
)

var seq atomic.Int64

// NS is a named network namespace.
type NS struct {
	*netns.NS
}

// DefaultPrefix starts the names of namespaces made by New and NewNode.
const DefaultPrefix = "pdt"

// New creates a namespace named pdt-<short>-<pid>-<n>, removed at cleanup.
func New(t testing.TB, short string) *NS {
	t.Helper()
	return NewPrefixed(t, DefaultPrefix, short)
}

// NewPrefixed is New with another name prefix, for tests that must not
// share names with others running at the same time.
func NewPrefixed(t testing.TB, prefix, short string) *NS {
	t.Helper()
	set := netns.NewSet(prefix)
	ns, err := set.Create(fmt.Sprintf("%s-%d-%d", short, os.Getpid()%100000, seq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return &NS{NS: ns}
}

// Run runs a command inside the namespace and returns its output; it fails
// the test on error.
func (ns *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.Exec(args...)
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), ns.Name, err, out)
	}
	return out
}

// Try runs a command inside the namespace and returns output and error.
func (ns *NS) Try(args ...string) (string, error) { return ns.Exec(args...) }

// Sysctl writes a sysctl inside the namespace; it fails the test on error.
func (ns *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	if err := ns.NS.Sysctl(key, value); err != nil {
		t.Fatal(err)
	}
}
