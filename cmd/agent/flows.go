package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/palisade-dev/palisade/dataplane/agent"
	"github.com/palisade-dev/palisade/dataplane/agent/flowobserver"
	"github.com/palisade-dev/palisade/dataplane/agent/report"
	"github.com/palisade-dev/palisade/dataplane/agent/servingcert"
	"github.com/palisade-dev/palisade/dataplane/flows"
	"github.com/palisade-dev/palisade/dataplane/hubble"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/pki"
)

// flowConfig configures flow observation, the NodeFlowReport and the
// Hubble observer API.
type flowConfig struct {
	enabled        bool
	group          uint
	reportInterval time.Duration
	window         time.Duration
	tableSize      int
	hubbleAddr     string
	hubbleCert     string
	hubbleKey      string
	hubbleBuffer   int
	// mtlsAddr is the mutual-TLS listener's address ("0": none) and
	// mtlsLifetime what its serving certificate is asked for.
	mtlsAddr     string
	mtlsLifetime time.Duration
}

// flowDefaults returns the flow configuration of an agent given no flags.
func flowDefaults() flowConfig {
	return flowConfig{
		enabled:        true,
		group:          uint(defaultLogGroup),
		reportInterval: report.DefaultInterval,
		window:         flows.DefaultWindow,
		tableSize:      flows.DefaultMaxEntries,
		hubbleAddr:     hubble.DefaultAddress,
		hubbleBuffer:   hubble.DefaultCapacity,
		mtlsAddr:       "0",
		mtlsLifetime:   pki.DefaultServingLifetime,
	}
}

// bind registers the flow flags on fs, with f's values as their defaults.
func (f *flowConfig) bind(fs *flag.FlagSet) {
	fs.BoolVar(&f.enabled, "flow-log", f.enabled, "Observe flows in the kernel's verdict log (NFLOG), report them in the node's NodeFlowReport and serve them to Hubble clients.")
	fs.UintVar(&f.group, "flow-log-group", f.group, "NFLOG group the rules log to and the agent reads.")
	fs.DurationVar(&f.reportInterval, "report-interval", f.reportInterval, "At most one NodeFlowReport write per interval (unchanged reports are rewritten every 6 intervals as a heartbeat).")
	fs.DurationVar(&f.window, "flow-window", f.window, "Flows not seen for this long leave the aggregation table and the report.")
	fs.IntVar(&f.tableSize, "flow-table-size", f.tableSize, "Most aggregated flows held; observations of new flows beyond it are dropped and counted.")
	fs.StringVar(&f.hubbleAddr, "hubble-bind-address", f.hubbleAddr, "Address of the Hubble observer gRPC API, in plaintext: a loopback address (reach it with kubectl port-forward to the agent pod), unless --hubble-tls-cert-file is set; 0 disables it.")
	fs.StringVar(&f.hubbleCert, "hubble-tls-cert-file", f.hubbleCert, "PEM certificate of the Hubble API on --hubble-bind-address (with --hubble-tls-key-file): TLS without client authentication; prefer --hubble-mtls-bind-address.")
	fs.StringVar(&f.hubbleKey, "hubble-tls-key-file", f.hubbleKey, "PEM private key of the Hubble API.")
	fs.IntVar(&f.hubbleBuffer, "hubble-buffer-size", f.hubbleBuffer, "Flows the Hubble API keeps for GetFlows without follow.")
	fs.StringVar(&f.mtlsAddr, "hubble-mtls-bind-address", f.mtlsAddr, "Address of the Hubble observer API over mutual TLS, for remote readers: the agent's serving certificate (for the node's name and addresses, renewed before it expires) comes from Palisade's CA through a CertificateSigningRequest, and clients need a certificate of the same CA (kubectl palisade flows-cert); 0 disables it.")
	fs.DurationVar(&f.mtlsLifetime, "hubble-mtls-cert-lifetime", f.mtlsLifetime, "Lifetime the agent asks for its mutual-TLS serving certificate (renewed after two-thirds of it; the signer issues at most 7 days).")
}

// validate tells every flow flag whose value is unusable.
func (f *flowConfig) validate() error {
	var errs []error
	if f.reportInterval < time.Second {
		errs = append(errs, fmt.Errorf("--report-interval %s: want at least 1s", f.reportInterval))
	}
	if f.window < f.reportInterval {
		errs = append(errs, fmt.Errorf("--flow-window %s: want at least --report-interval", f.window))
	}
	if f.tableSize < 1 {
		errs = append(errs, fmt.Errorf("--flow-table-size %d: want at least 1", f.tableSize))
	}
	if f.group > 0xffff {
		errs = append(errs, fmt.Errorf("--flow-log-group %d: want 0..65535", f.group))
	}
	if (f.hubbleCert == "") != (f.hubbleKey == "") {
		errs = append(errs, errors.New("--hubble-tls-cert-file and --hubble-tls-key-file go together"))
	}
	if f.hubbleAddr != "0" && f.hubbleCert == "" && !loopback(f.hubbleAddr) {
		errs = append(errs, fmt.Errorf("--hubble-bind-address %q would serve every flow of the node in plaintext to whoever reaches it, pods included: "+
			"bind it to loopback (127.0.0.1:4244) and use --hubble-mtls-bind-address for remote readers", f.hubbleAddr))
	}
	if f.mtlsAddr != "0" && f.mtlsLifetime < pki.MinLifetime {
		errs = append(errs, fmt.Errorf("--hubble-mtls-cert-lifetime %s: want at least %s", f.mtlsLifetime, pki.MinLifetime))
	}
	return errors.Join(errs...)
}

// serveHubble adds the Hubble servers of buf to the manager: plaintext (or
// TLS from files) on --hubble-bind-address, and mutual TLS with a serving
// certificate that a servingcert.Rotator keeps on --hubble-mtls-bind-address.
func (f *flowConfig) serveHubble(mgr manager.Manager, buf *hubble.Buffer, node string) error {
	listen := func(srv *hubble.Server, addr string) error {
		return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { return srv.ListenAndServe(ctx, addr) }))
	}
	if f.hubbleAddr != "0" {
		if err := listen(hubble.NewServer(buf, hubble.ServerOptions{NodeName: node, TLSCertFile: f.hubbleCert, TLSKeyFile: f.hubbleKey}), f.hubbleAddr); err != nil {
			return err
		}
	}
	if f.mtlsAddr == "0" {
		return nil
	}
	csrs, err := certificatesv1client.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("certificates client: %w", err)
	}
	creds := &hubble.MutualTLS{}
	// The agent may get its own Node, not list or watch nodes: read it
	// directly, not through the cache.
	rot := &servingcert.Rotator{CSRs: csrs.CertificateSigningRequests(), Nodes: mgr.GetAPIReader(), NodeName: node, Sink: creds, Lifetime: f.mtlsLifetime}
	if err := mgr.Add(rot); err != nil {
		return err
	}
	return listen(hubble.NewServer(buf, hubble.ServerOptions{NodeName: node, MutualTLS: creds}), f.mtlsAddr)
}

// loopback tells whether addr (host:port) names a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// renderOptions make the rules log verdicts to the group the agent reads,
// or not at all without --flow-log.
func (f *flowConfig) renderOptions() render.Option {
	if !f.enabled {
		return render.WithoutLog()
	}
	return render.WithLog(render.LogOptions{Group: uint16(f.group)})
}

// setup wires the flow pipeline into the agent and the manager: the
// verdict log feeds the aggregator (reported by the ReportWriter) and the
// Hubble buffer (served by the Hubble server).
func (f *flowConfig) setup(mgr manager.Manager, a *agent.Agent, node string) error {
	if !f.enabled {
		return nil
	}
	agg := flows.NewAggregator(f.tableSize, f.window)
	events, extraDropped := newEventSource(uint16(f.group))
	obs := &flowobserver.Observer{Events: events, Aggregator: agg, Lost: extraDropped, Metrics: a.Metrics}
	if f.hubbleAddr != "0" || f.mtlsAddr != "0" {
		buf := hubble.NewBuffer(f.hubbleBuffer)
		obs.Sinks = append(obs.Sinks, buf)
		if err := f.serveHubble(mgr, buf, node); err != nil {
			return err
		}
	}
	a.Flows = obs
	// Reports go straight to the API server: the agent may get its Node,
	// not list or watch nodes, so a cached read would be refused.
	c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return fmt.Errorf("report client: %w", err)
	}
	w := &report.Writer{
		Client: c, NodeName: node, Interval: f.reportInterval, Aggregator: agg,
		Programmed: a.Programmed, Ready: a.Ready, ExtraDropped: func() int64 { return int64(extraDropped()) },
		Metrics: a.Metrics,
	}
	a.OnProgrammedChange = w.Kick
	return mgr.Add(w)
}
