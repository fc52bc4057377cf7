// Command agent enforces NetworkPolicies on one node with nftables (or
// iptables), and Audit-mode ServiceIntents as log-and-accept. It reads the
// kernel's verdict log (NFLOG), reports the flows in the node's
// NodeFlowReport and serves them over the Hubble observer API (flows.go).
// Run it on every node (a DaemonSet with hostNetwork and NET_ADMIN).
// `agent uninstall` removes what it programmed; nothing else does, not even
// SIGTERM: rules stay in the kernel while the agent is down (fail closed).
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/agent"
	"github.com/palisade-dev/palisade/dataplane/agent/agentcache"
	"github.com/palisade-dev/palisade/dataplane/agent/agentmetrics"
	"github.com/palisade-dev/palisade/dataplane/agent/startup"
	"github.com/palisade-dev/palisade/dataplane/conntrack"
	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/dataplane/statefile"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&cfg.zap)))
	if err := cfg.validate(); err != nil {
		return err
	}
	backend, err := newBackend(cfg, cfg.flows.renderOptions())
	if err != nil {
		return err
	}
	if cfg.uninstall {
		return uninstall(backend, cfg)
	}
	return serve(backend, cfg)
}

// uninstall removes the dataplane and the state file.
func uninstall(backend dataplane.Backend, cfg config) error {
	if err := backend.Uninstall(context.Background()); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	// A state file left behind would be restored by the next agent
	// installed on this node, long stale, instead of its cold start.
	if cfg.stateFile != "" {
		if err := os.Remove(cfg.stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("uninstall: remove the state file: %w", err)
		}
	}
	ctrl.Log.Info("removed the dataplane", "backend", cfg.backend)
	return nil
}

// serve programs the kernel at once from what the node holds, then runs
// the agent until a signal ends it.
func serve(backend dataplane.Backend, cfg config) error {
	scheme, err := newScheme()
	if err != nil {
		return err
	}
	restCfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	programAtStart(ctx, backend, cfg)
	mgr, err := newManager(ctx, restCfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  agentcache.Options(),
		Metrics:                cfg.metrics.Options(cfg.metricsAddr),
		HealthProbeBindAddress: cfg.probeAddr,
		PprofBindAddress:       cfg.pprofAddr,
	})
	if err != nil {
		return err
	}
	if err := addAgent(mgr, backend, cfg); err != nil {
		return err
	}
	ctrl.Log.Info("starting agent", "node", cfg.nodeName, "backend", cfg.backend)
	return mgr.Start(ctx)
}

func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme, nil
}

// addAgent adds the sync loop, its flow pipeline and its health checks to
// the manager. The agent's metrics go on controller-runtime's registry:
// the manager's metrics endpoint serves that one.
func addAgent(mgr ctrl.Manager, backend dataplane.Backend, cfg config) error {
	m, err := agentmetrics.New(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Config{NodeName: cfg.nodeName}, mgr.GetCache(), backend)
	if err != nil {
		return err
	}
	a.Metrics = m
	if !cfg.keepEstablished {
		a.Cutter = conntrack.Cutter{}
	}
	if cfg.stateFile != "" {
		a.StateFile = &statefile.File{Path: cfg.stateFile}
	}
	if err := mgr.Add(a); err != nil {
		return err
	}
	if err := cfg.flows.setup(mgr, a, cfg.nodeName); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("first-sync", a.ReadyCheck)
}

// programAtStart fails closed across reboots: the last known good state
// goes into the kernel before anything needs the API server, or, on a node
// without one, the cold start.
func programAtStart(ctx context.Context, backend dataplane.Backend, cfg config) {
	if cfg.stateFile != "" {
		restored, err := startup.Restore(ctx, backend, cfg.stateFile)
		switch {
		case err != nil:
			ctrl.Log.Error(err, "could not restore the last synced state; waiting for the API server", "stateFile", cfg.stateFile)
		case restored:
			ctrl.Log.Info("restored the last synced state", "stateFile", cfg.stateFile)
			return
		}
	}
	startCold(ctx, backend, startup.ColdStartMode(cfg.coldStart))
}

// startCold closes a new node until the first sync (--cold-start=deny),
// before anything needs the API server. An error is logged, not fatal: the
// agent still syncs as soon as the API server answers.
func startCold(ctx context.Context, backend dataplane.Backend, mode startup.ColdStartMode) {
	outcome, err := startup.ColdStart(ctx, backend, mode)
	switch {
	case err != nil:
		ctrl.Log.Error(err, "could not program the cold-start deny; pods on this node are not isolated until the first sync")
	case outcome == startup.ColdStartProgrammed:
		ctrl.Log.Info("no Palisade rules and no saved state on this node: cold-start deny until the first sync (new forwarded connections to and from pods are dropped)", "coldStart", mode)
	case outcome == startup.ColdStartKept:
		ctrl.Log.Info("Palisade rules already in the kernel: keeping them until the first sync", "coldStart", mode)
	case outcome == startup.ColdStartSkipped:
		ctrl.Log.Info("--cold-start=allow: pods on this node are not isolated until the first sync", "coldStart", mode)
	}
}

// newManager creates the manager, waiting for the API server as long as it
// is unreachable: creating the cache asks the server's discovery whether
// each cached kind is namespaced, and an agent that exited on that would
// crash-loop through an API server outage. The restored state stays in the
// kernel meanwhile. Other errors (bad flags) end the
// agent.
func newManager(ctx context.Context, cfg *rest.Config, opts ctrl.Options) (ctrl.Manager, error) {
	// Short enough that the agent is back within seconds of the server.
	const maxBackoff = 10 * time.Second
	backoff := time.Second
	for {
		mgr, err := ctrl.NewManager(cfg, opts)
		if err == nil {
			return mgr, nil
		}
		if !apiUnreachable(err) {
			return nil, fmt.Errorf("create manager: %w", err)
		}
		ctrl.Log.Error(err, "API server unreachable; keeping the kernel rules and retrying", "retryIn", backoff)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("create manager: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// apiUnreachable tells whether err is the API server being down, stopped or
// overloaded (worth waiting for) rather than a configuration error.
func apiUnreachable(err error) bool {
	var urlErr *url.Error
	var netErr net.Error
	return errors.As(err, &urlErr) || errors.As(err, &netErr) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err)
}

func newBackend(cfg config, opts render.Option) (dataplane.Backend, error) {
	switch cfg.backend {
	case "nftables":
		return nft.New(nft.WithTable(cfg.nftTable), nft.WithRenderOptions(opts)), nil
	case "iptables":
		b, err := iptables.New(iptables.WithRenderOptions(opts))
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown --backend %q: want nftables or iptables", cfg.backend)
}
