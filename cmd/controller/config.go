package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/palisade-dev/palisade/controllers"
	"github.com/palisade-dev/palisade/controllers/observe"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
	"github.com/palisade-dev/palisade/internal/securemetrics"
)

// Config is the controller's command line.
type Config struct {
	MetricsAddr string
	Metrics     securemetrics.Flags
	ProbeAddr   string
	PprofAddr   string
	LeaderElect bool

	DNSNamespace   string
	DNSPodSelector string
	DNSPorts       string

	UnusedCallerWindow    time.Duration
	Workers               int
	CountUpdatesPerSecond float64
	AgentNamespace        string
	CASecret              string

	Zap zap.Options
}

// Defaults sets every field to its flag's default.
func (c *Config) Defaults() {
	c.MetricsAddr = ":8080"
	c.Metrics = securemetrics.Flags{Secure: true}
	c.ProbeAddr = ":8081"
	c.PprofAddr = "0"
	c.LeaderElect = false
	c.DNSNamespace = "kube-system"
	c.DNSPodSelector = "k8s-app=kube-dns"
	c.DNSPorts = "53/UDP,53/TCP"
	c.UnusedCallerWindow = observe.DefaultUnusedCallerWindow
	c.Workers = controllers.DefaultWorkers
	c.CountUpdatesPerSecond = controllers.DefaultCountUpdatesPerSecond
	c.AgentNamespace = controllers.DefaultAgentNamespace
	c.CASecret = controllers.DefaultAgentNamespace + "/" + controllers.DefaultCASecret
}

// Bind registers the flags on fs, with the config's current values as
// their defaults, and --kubeconfig (read by ctrl.GetConfigOrDie).
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.MetricsAddr, "metrics-bind-address", c.MetricsAddr, "The address the metrics endpoint binds to; 0 disables it.")
	c.Metrics.Bind(fs)
	fs.StringVar(&c.ProbeAddr, "health-probe-bind-address", c.ProbeAddr, "The address the health and readiness probes bind to.")
	fs.StringVar(&c.PprofAddr, "pprof-bind-address", c.PprofAddr, "Address of Go's /debug/pprof profiles, for diagnosis (no authentication: bind it to localhost); 0 disables it.")
	fs.BoolVar(&c.LeaderElect, "leader-elect", c.LeaderElect, "Elect a leader, so that only one replica writes.")
	fs.StringVar(&c.DNSNamespace, "dns-namespace", c.DNSNamespace, "Namespace of the cluster DNS pods that zero-trust namespaces may reach.")
	fs.StringVar(&c.DNSPodSelector, "dns-pod-selector", c.DNSPodSelector, "Label selector (k=v,...) of the cluster DNS pods.")
	fs.StringVar(&c.DNSPorts, "dns-ports", c.DNSPorts, "Cluster DNS ports as port/protocol, comma-separated.")
	fs.DurationVar(&c.UnusedCallerWindow, "unused-caller-window", c.UnusedCallerWindow,
		"A declared caller not observed calling for this long is listed in status.unusedCallers.")
	fs.IntVar(&c.Workers, "workers", c.Workers, "ServiceIntents reconciled at once.")
	fs.Float64Var(&c.CountUpdatesPerSecond, "count-updates-per-second", c.CountUpdatesPerSecond,
		"Status writes per second, across all intents, that change nothing but an intent's selected-pod count (pod churn); other status changes are written at once. 0 writes them all at once.")
	fs.StringVar(&c.AgentNamespace, "agent-namespace", c.AgentNamespace,
		"Namespace of the agent DaemonSet: a node's palisade.dev/agent-not-ready taint is removed once the agent pod there on that node is Ready.")
	fs.StringVar(&c.CASecret, "ca-secret", c.CASecret,
		"namespace/name of the Secret holding Palisade's CA (created on first use), which signs the agents' flow API serving certificates and flows client certificates (CertificateSigningRequests of signers palisade.dev/agent-serving and palisade.dev/flows-client); empty: sign none.")
	c.Zap.BindFlags(fs)
	config.RegisterFlags(fs)
}

// Validate reports every invalid flag at once.
func (c *Config) Validate() error {
	var errs []error
	if _, err := c.dns(); err != nil {
		errs = append(errs, err)
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers: must be at least 1, got %d", c.Workers))
	}
	if c.CountUpdatesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("--count-updates-per-second: must not be negative, got %g", c.CountUpdatesPerSecond))
	}
	if _, err := c.caSecret(); err != nil {
		errs = append(errs, err)
	}
	if c.UnusedCallerWindow <= 0 {
		errs = append(errs, fmt.Errorf("--unused-caller-window: must be positive, got %s", c.UnusedCallerWindow))
	}
	return errors.Join(errs...)
}

// dns parses the --dns-* flags.
func (c *Config) dns() (compiler.DNSConfig, error) {
	dns, err := controllers.ParseDNSConfig(c.DNSNamespace, c.DNSPodSelector, c.DNSPorts)
	if err != nil {
		return dns, fmt.Errorf("--dns-namespace, --dns-pod-selector, --dns-ports: %w", err)
	}
	return dns, nil
}

// ControllerOptions are the controllers' options; the config must be valid.
func (c *Config) ControllerOptions() (controllers.Options, error) {
	dns, err := c.dns()
	if err != nil {
		return controllers.Options{}, err
	}
	countUpdates := c.CountUpdatesPerSecond
	if countUpdates == 0 {
		countUpdates = -1 // Options: negative means no pacing
	}
	caSecret, err := c.caSecret()
	if err != nil {
		return controllers.Options{}, err
	}
	return controllers.Options{DNS: dns, UnusedCallerWindow: c.UnusedCallerWindow, Workers: c.Workers,
		AgentNamespace: c.AgentNamespace, CountUpdatesPerSecond: countUpdates, CASecret: caSecret}, nil
}

// caSecret parses --ca-secret.
func (c *Config) caSecret() (types.NamespacedName, error) {
	if c.CASecret == "" {
		return types.NamespacedName{}, nil
	}
	ns, name, ok := strings.Cut(c.CASecret, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("--ca-secret %q: want namespace/name or empty", c.CASecret)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}
