package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"

	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/palisade-dev/palisade/dataplane/agent/startup"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/dataplane/statefile"
	"github.com/palisade-dev/palisade/internal/securemetrics"
)

// backends are the values of --backend.
var backends = []string{"nftables", "iptables"}

// config is the agent's command line.
type config struct {
	// uninstall is the `agent uninstall` subcommand.
	uninstall       bool
	nodeName        string
	backend         string
	nftTable        string
	metricsAddr     string
	metrics         securemetrics.Flags
	probeAddr       string
	pprofAddr       string
	keepEstablished bool
	stateFile       string
	coldStart       string
	flows           flowConfig
	zap             zap.Options
}

// defaults returns the configuration of an agent given no flags.
func defaults() config {
	return config{
		nodeName:    os.Getenv("NODE_NAME"),
		backend:     "nftables",
		nftTable:    render.TableName,
		metricsAddr: ":8081",
		// The agent runs in the node's network namespace: its probes answer
		// the kubelet there, on loopback, and no pod.
		probeAddr: "127.0.0.1:8082",
		pprofAddr: "0",
		stateFile: statefile.DefaultPath,
		coldStart: string(startup.ColdStartDeny),
		flows:     flowDefaults(),
	}
}

// bind registers the flags on fs, with c's values as their defaults.
func (c *config) bind(fs *flag.FlagSet) {
	ctrlconfig.RegisterFlags(fs) // --kubeconfig
	fs.StringVar(&c.nodeName, "node-name", c.nodeName, "Name of this node (default: $NODE_NAME).")
	fs.StringVar(&c.backend, "backend", c.backend, "Dataplane backend: nftables or iptables.")
	fs.StringVar(&c.nftTable, "nft-table", c.nftTable, "Name of the agent's private nftables table (family inet), for the nftables backend. Two agents on one node need two names.")
	fs.StringVar(&c.metricsAddr, "metrics-bind-address", c.metricsAddr, "Address of the Prometheus metrics endpoint; 0 disables it.")
	c.metrics.Bind(fs)
	fs.StringVar(&c.probeAddr, "health-probe-bind-address", c.probeAddr, "Address of /healthz and /readyz; /readyz passes only after the first successful sync.")
	fs.StringVar(&c.pprofAddr, "pprof-bind-address", c.pprofAddr, "Address of Go's /debug/pprof profiles, for diagnosis (no authentication: bind it to localhost); 0 disables it.")
	fs.BoolVar(&c.keepEstablished, "keep-established-connections", c.keepEstablished, "Keep established connections that a policy change denies; by default their conntrack entries are deleted right after the new rules are committed, so they are cut.")
	fs.StringVar(&c.stateFile, "state-file", c.stateFile, "File holding the last synced policy state, programmed at start before the API server is reachable (after a node reboot); empty disables it.")
	fs.StringVar(&c.coldStart, "cold-start", c.coldStart, "What a node whose kernel holds no Palisade rules and no saved state (a new node) forwards until the agent's first sync: deny drops every new forwarded connection to and from pods (established ones and the node's own traffic pass); allow leaves pods unisolated until then. Existing rules are never replaced.")
	c.flows.bind(fs)
	c.zap.BindFlags(fs)
}

// validate tells every flag whose value is unusable.
func (c *config) validate() error {
	var errs []error
	if !slices.Contains(backends, c.backend) {
		errs = append(errs, fmt.Errorf("unknown --backend %q: want nftables or iptables", c.backend))
	}
	if c.backend == "nftables" && !validTableName(c.nftTable) {
		errs = append(errs, fmt.Errorf("--nft-table %q: want 1-%d letters, digits, '_' or '-', starting with a letter", c.nftTable, maxTableName))
	}
	if _, err := startup.ParseColdStartMode(c.coldStart); err != nil {
		errs = append(errs, fmt.Errorf("--cold-start: %w", err))
	}
	if c.flows.enabled {
		errs = append(errs, c.flows.validate())
	}
	if !c.uninstall && c.nodeName == "" {
		errs = append(errs, errors.New("--node-name (or $NODE_NAME) is required"))
	}
	return errors.Join(errs...)
}

// parseConfig parses the command line (without the program name): an
// optional `uninstall` subcommand, then flags.
func parseConfig(args []string) (config, error) {
	c := defaults()
	if len(args) > 0 && args[0] == "uninstall" {
		c.uninstall, args = true, args[1:]
	}
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	c.bind(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, nil
}

// maxTableName is the longest table name nftables accepts (NFT_NAME_MAXLEN
// is 256 with the terminating NUL); we keep names short and plain so they
// read well in `nft list tables`.
const maxTableName = 64

// validTableName says whether name is a plain nftables identifier.
func validTableName(name string) bool {
	if name == "" || len(name) > maxTableName {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return true
}
