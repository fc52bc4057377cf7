// Command agent enforces NetworkPolicies on one node with nftables (or
// iptables). Run it on every node (a DaemonSet with hostNetwork and
// NET_ADMIN). `agent uninstall` removes what it programmed; nothing else
// does, not even SIGTERM: rules stay in the kernel while the agent is down
// (fail closed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/agent"
	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/nft"
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
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	backend, err := newBackend(*backendName)
	if err != nil {
		return err
	}
	if uninstall {
		if err := backend.Uninstall(context.Background()); err != nil {
			return fmt.Errorf("uninstall: %w", err)
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
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cacheOpts := agent.CacheOptions()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cacheOpts,
		Metrics:                metricsFlags.Options(*metricsAddr),
		HealthProbeBindAddress: *probeAddr,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	a := &agent.Agent{NodeName: *nodeName, Cache: mgr.GetCache(), Backend: backend}
	if err := mgr.Add(a); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("first-sync", a.ReadyCheck); err != nil {
		return err
	}
	ctrl.Log.Info("starting agent", "node", *nodeName, "backend", *backendName)
	return mgr.Start(ctrl.SetupSignalHandler())
}

func newBackend(name string) (dataplane.Backend, error) {
	switch name {
	case "nftables":
		return nft.New(), nil
	case "iptables":
		b, err := iptables.New()
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown --backend %q: want nftables or iptables", name)
}
