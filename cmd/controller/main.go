// Command controller runs Palisade's controller manager: it turns
// ServiceIntents into NetworkPolicies and keeps zero-trust namespaces'
// baseline policies.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers"
)

func main() {
	var cfg Config
	cfg.Defaults()
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	cfg.Bind(fs)
	_ = fs.Parse(os.Args[1:]) // ExitOnError: a bad flag exits 2
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&cfg.Zap)))
	setupLog := ctrl.Log.WithName("setup")
	if err := cfg.Validate(); err != nil {
		setupLog.Error(err, "invalid flags")
		os.Exit(2)
	}
	if err := run(ctrl.SetupSignalHandler(), &cfg); err != nil {
		setupLog.Error(err, "controller manager failed")
		os.Exit(1)
	}
}

// run sets the manager up from a valid config and runs it until ctx ends.
func run(ctx context.Context, cfg *Config) error {
	opts, err := cfg.ControllerOptions()
	if err != nil {
		return err
	}
	mgr, err := newManager(cfg)
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := controllers.SetupWithManager(ctx, mgr, opts); err != nil {
		return fmt.Errorf("set up controllers: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add ready check: %w", err)
	}
	ctrl.Log.WithName("setup").Info("starting manager")
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("manager stopped: %w", err)
	}
	return nil
}

// newManager creates the manager: the scheme, the controllers' cache,
// metrics and probes, and leader election.
func newManager(cfg *Config) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	return ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                cfg.Metrics.Options(cfg.MetricsAddr),
		HealthProbeBindAddress: cfg.ProbeAddr,
		PprofBindAddress:       cfg.PprofAddr,
		LeaderElection:         cfg.LeaderElect,
		LeaderElectionID:       controllers.LeaderElectionID,
		// The process exits right after the manager stops, so releasing the
		// lease on SIGTERM is safe: nothing writes afterwards, and the other
		// replica takes over at once instead of after the lease expires.
		LeaderElectionReleaseOnCancel: true,
	})
}
