// Command agent enforces NetworkPolicies on one node with nftables (or
// iptables), and Audit-mode ServiceIntents as log-and-accept. It reads the
// kernel's verdict log (NFLOG), reports the flows in the node's
// NodeFlowReport and serves them over the Hubble observer API (flows.go).
// Run it on every node (a DaemonSet with hostNetwork and NET_ADMIN). `agent uninstall` removes what it programmed; nothing else
// does, not even SIGTERM: rules stay in the kernel while the agent is down
// (fail closed).
package main

import (
	"context"
	"errors"
	"flag"
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
	"github.com/palisade-dev/palisade/internal/securemetrics"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	uninstall := len(args) > 0 && args[0] == "uninstall"
	if uninstall {
		args = args[1:]
	}
	// --kubeconfig comes from controller-runtime, registered on flag.CommandLine.
	fs := flag.CommandLine
	nodeName := fs.String("node-name", os.Getenv("NODE_NAME"), "Name of this node (default: $NODE_NAME).")
	backendName := fs.String("backend", "nftables", "Dataplane backend: nftables or iptables.")
	metricsAddr := fs.String("metrics-bind-address", ":8081", "Address of the Prometheus metrics endpoint; 0 disables it.")
	var metricsFlags securemetrics.Flags
	metricsFlags.Bind(fs)
	probeAddr := fs.String("health-probe-bind-address", ":8082", "Address of /healthz and /readyz; /readyz passes only after the first successful sync.")
	pprofAddr := fs.String("pprof-bind-address", "0", "Address of Go's /debug/pprof profiles, for diagnosis (no authentication: bind it to localhost); 0 disables it.")
	keepEstablished := fs.Bool("keep-established-connections", false, "Keep established connections that a policy change denies; by default their conntrack entries are deleted right after the new rules are committed, so they are cut.")
	stateFile := fs.String("state-file", statefile.DefaultPath, "File holding the last synced policy state, programmed at start before the API server is reachable (after a node reboot); empty disables it.")
	coldStartFlag := fs.String("cold-start", string(startup.ColdStartDeny), "What a node whose kernel holds no Palisade rules and no saved state (a new node) forwards until the agent's first sync: deny drops every new forwarded connection to and from pods (established ones and the node's own traffic pass); allow leaves pods unisolated until then. Existing rules are never replaced.")
	var fl flowFlags
	fl.bind(fs)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	coldStart, err := startup.ParseColdStartMode(*coldStartFlag)
	if err != nil {
		return fmt.Errorf("--cold-start: %w", err)
	}
	if fl.enabled {
		if err := fl.validate(); err != nil {
			return err
		}
	}

	backend, err := newBackend(*backendName, fl.renderOptions())
	if err != nil {
		return err
	}
	if uninstall {
		if err := backend.Uninstall(context.Background()); err != nil {
			return fmt.Errorf("uninstall: %w", err)
		}
		// A state file left behind would be restored by the next agent
		// installed on this node, long stale, instead of its cold start.
		if *stateFile != "" {
			if err := os.Remove(*stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("uninstall: remove the state file: %w", err)
			}
		}
		ctrl.Log.Info("removed the dataplane", "backend", *backendName)
		return nil
	}
	if *nodeName == "" {
		return errors.New("--node-name (or $NODE_NAME) is required")
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	restored := false
	if *stateFile != "" {
		// Fail closed across reboots: the last known good state goes into the
		// kernel before anything needs the API server.
		restored, err = startup.Restore(ctx, backend, *stateFile)
		if err != nil {
			ctrl.Log.Error(err, "could not restore the last synced state; waiting for the API server", "stateFile", *stateFile)
		} else if restored {
			ctrl.Log.Info("restored the last synced state", "stateFile", *stateFile)
		}
	}
	if !restored {
		startCold(ctx, backend, coldStart)
	}
	mgr, err := newManager(ctx, cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  agentcache.Options(),
		Metrics:                metricsFlags.Options(*metricsAddr),
		HealthProbeBindAddress: *probeAddr,
		PprofBindAddress:       *pprofAddr,
	})
	if err != nil {
		return err
	}
	m, err := agentmetrics.New(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	a := &agent.Agent{NodeName: *nodeName, Cache: mgr.GetCache(), Backend: backend, Metrics: m}
	if !*keepEstablished {
		a.Cutter = conntrack.Cutter{}
	}
	if *stateFile != "" {
		a.StateFile = &statefile.File{Path: *stateFile}
	}
	if err := mgr.Add(a); err != nil {
		return err
	}
	if err := fl.setup(mgr, a, *nodeName); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("first-sync", a.ReadyCheck); err != nil {
		return err
	}
	ctrl.Log.Info("starting agent", "node", *nodeName, "backend", *backendName)
	return mgr.Start(ctx)
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
// crash-loop through an API server outage (issue 7, item 4). The restored
// state stays in the kernel meanwhile. Other errors (bad flags) end the
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

func newBackend(name string, opts render.Option) (dataplane.Backend, error) {
	switch name {
	case "nftables":
		return nft.New(nft.WithRenderOptions(opts)), nil
	case "iptables":
		b, err := iptables.New(iptables.WithRenderOptions(opts))
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown --backend %q: want nftables or iptables", name)
}
