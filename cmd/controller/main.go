// Command controller runs Palisade's controller manager: it turns
// ServiceIntents into NetworkPolicies and keeps zero-trust namespaces'
// baseline policies.
package main

import (
	"flag"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers"
	"github.com/palisade-dev/palisade/controllers/observe"
	"github.com/palisade-dev/palisade/internal/securemetrics"
)

func main() {
	var (
		metricsAddr, probeAddr          string
		leaderElect                     bool
		dnsNamespace, dnsPods, dnsPorts string
		unusedCallerWindow              time.Duration
	)
	var metricsFlags securemetrics.Flags
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "The address the metrics endpoint binds to; 0 disables it.")
	metricsFlags.Bind(flag.CommandLine)
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the health and readiness probes bind to.")
	pprofAddr := flag.String("pprof-bind-address", "0", "Address of Go's /debug/pprof profiles, for diagnosis (no authentication: bind it to localhost); 0 disables it.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one replica writes.")
	flag.StringVar(&dnsNamespace, "dns-namespace", "kube-system", "Namespace of the cluster DNS pods that zero-trust namespaces may reach.")
	flag.StringVar(&dnsPods, "dns-pod-selector", "k8s-app=kube-dns", "Label selector (k=v,...) of the cluster DNS pods.")
	flag.StringVar(&dnsPorts, "dns-ports", "53/UDP,53/TCP", "Cluster DNS ports as port/protocol, comma-separated.")
	flag.DurationVar(&unusedCallerWindow, "unused-caller-window", observe.DefaultUnusedCallerWindow,
		"A declared caller not observed calling for this long is listed in status.unusedCallers.")
	workers := flag.Int("workers", controllers.DefaultWorkers, "ServiceIntents reconciled at once.")
	countUpdates := flag.Float64("count-updates-per-second", controllers.DefaultCountUpdatesPerSecond,
		"Status writes per second, across all intents, that change nothing but an intent's selected-pod count (pod churn); other status changes are written at once. 0 writes them all at once.")
	agentNamespace := flag.String("agent-namespace", controllers.DefaultAgentNamespace,
		"Namespace of the agent DaemonSet: a node's palisade.dev/agent-not-ready taint is removed once the agent pod there on that node is Ready.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	// --kubeconfig is registered by controller-runtime's config package.
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	setupLog := ctrl.Log.WithName("setup")

	dns, err := controllers.ParseDNSConfig(dnsNamespace, dnsPods, dnsPorts)
	if err != nil {
		setupLog.Error(err, "invalid DNS flags")
		os.Exit(2)
	}
	if *workers < 1 {
		setupLog.Error(nil, "--workers must be at least 1", "value", *workers)
		os.Exit(2)
	}
	if *countUpdates < 0 {
		setupLog.Error(nil, "--count-updates-per-second must not be negative", "value", *countUpdates)
		os.Exit(2)
	}
	if *countUpdates == 0 {
		*countUpdates = -1 // Options: negative means no pacing
	}
	if unusedCallerWindow <= 0 {
		setupLog.Error(nil, "--unused-caller-window must be positive", "value", unusedCallerWindow)
		os.Exit(2)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsFlags.Options(metricsAddr),
		HealthProbeBindAddress: probeAddr,
		PprofBindAddress:       *pprofAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       controllers.LeaderElectionID,
		// The process exits right after the manager stops, so releasing the
		// lease on SIGTERM is safe: nothing writes afterwards, and the other
		// replica takes over at once instead of after the lease expires.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		setupLog.Error(err, "create manager")
		os.Exit(1)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := controllers.SetupWithManager(ctx, mgr, controllers.Options{DNS: dns, UnusedCallerWindow: unusedCallerWindow, Workers: *workers, AgentNamespace: *agentNamespace,
		CountUpdatesPerSecond: *countUpdates}); err != nil {
		setupLog.Error(err, "set up controllers")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "add health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "add ready check")
		os.Exit(1)
	}
	setupLog.Info("starting manager")
	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "manager stopped")
		os.Exit(1)
	}
}
