// Package securemetrics holds the metrics endpoint options of both
// binaries: HTTPS, and every request authenticated and authorized by the
// API server, so that metrics (which name namespaces, policies and nodes)
// are not open to every pod that can reach the port.
package securemetrics

import (
	"crypto/tls"
	"flag"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// secureFlagUsage is the help text of the --metrics-secure flag.
const secureFlagUsage = "Serve metrics over HTTPS and only to callers the API server authenticates (TokenReview) and authorizes " +
	"(get on the non-resource URL /metrics, e.g. the palisade-metrics-reader ClusterRole). " +
	"Without a certificate in --metrics-cert-dir a self-signed one is used. --metrics-secure=false serves plain HTTP to anyone: local development only."

// Flags are the metrics flags both binaries register.
type Flags struct {
	Secure  bool
	CertDir string
}

// Bind registers --metrics-secure (default true) and --metrics-cert-dir.
func (f *Flags) Bind(fs *flag.FlagSet) {
	fs.BoolVar(&f.Secure, "metrics-secure", true, secureFlagUsage)
	fs.StringVar(&f.CertDir, "metrics-cert-dir", "", "Directory holding tls.crt and tls.key for the metrics endpoint; empty: a self-signed certificate.")
}

// Options returns the metrics server options for bindAddress ("0" disables
// the endpoint).
func (f *Flags) Options(bindAddress string) metricsserver.Options {
	o := metricsserver.Options{BindAddress: bindAddress}
	if !f.Secure {
		return o
	}
	o.SecureServing = true
	o.CertDir = f.CertDir
	o.FilterProvider = filters.WithAuthenticationAndAuthorization
	// HTTP/1.1 only: HTTP/2's stream reset and cancellation floods
	// (CVE-2023-44487, CVE-2023-39325) are served by the Go HTTP/2 server
	// before any authentication runs.
	o.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	return o
}
