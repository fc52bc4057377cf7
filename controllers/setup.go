// Package controllers sets Palisade's reconcilers up in one manager: the
// cache they share, and one reconciler per package beneath (serviceintent,
// namespace, nodetaint, certificates).
package controllers

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/palisade-dev/palisade/controllers/certificates"
	"github.com/palisade-dev/palisade/controllers/namespace"
	"github.com/palisade-dev/palisade/controllers/nodetaint"
	"github.com/palisade-dev/palisade/controllers/serviceintent"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// LeaderElectionID names the Lease that replicas of the controller compete
// for: only its holder runs the reconcilers and writes.
const LeaderElectionID = "palisade-controller.palisade.dev"

// Options configure the controllers.
type Options struct {
	// DNS is where cluster DNS runs, for zero-trust namespaces' baseline.
	DNS compiler.DNSConfig
	// Compile replaces the compile step; nil means the compiler. Only tests
	// set it, to inject compilation faults.
	Compile serviceintent.CompileFunc
	// UnusedCallerWindow: a declared caller not seen for this long is listed
	// as unused. Zero means observe.DefaultUnusedCallerWindow (24h).
	UnusedCallerWindow time.Duration
	// Workers is how many intents are reconciled at once (never the same
	// intent twice); zero means DefaultWorkers. A reconcile spends most of its
	// time waiting on the API server (apply, status patch), so a few workers
	// keep a cold start or a burst of pod events from queueing behind one
	// intent at a time.
	Workers int
	// AgentNamespace is the agent DaemonSet's namespace, whose pods' readiness
	// lifts the startup taint; empty means DefaultAgentNamespace.
	AgentNamespace string
	// CountUpdatesPerSecond paces status writes that change nothing but an
	// intent's selected-pod count (see serviceintent.Reconciler); zero means
	// DefaultCountUpdatesPerSecond, a negative value writes them at once.
	CountUpdatesPerSecond float64
	// CASecret is the Secret (made on first use) holding Palisade's CA, with
	// which the controller signs the agents' serving certificates and flows
	// client certificates; an empty name leaves both signers to someone else.
	CASecret types.NamespacedName
}

// Defaults of Options, re-exported for the command line.
const (
	DefaultWorkers               = serviceintent.DefaultWorkers
	DefaultCountUpdatesPerSecond = serviceintent.DefaultCountUpdatesPerSecond
	DefaultAgentNamespace        = nodetaint.DefaultAgentNamespace
	DefaultCASecret              = certificates.DefaultCASecret
)

// AgentServiceAccount is the agent DaemonSet's service account
// (config/agent): the only requester of agent serving certificates.
const AgentServiceAccount = "palisade-agent"

// SetupWithManager registers the intent controller (with its indexes), the
// zero-trust namespace controller and the node startup-taint controller
// with the manager.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	intents := &serviceintent.Reconciler{
		Client:                mgr.GetClient(),
		APIReader:             mgr.GetAPIReader(),
		Recorder:              mgr.GetEventRecorder("palisade-controller"),
		Compile:               opts.Compile,
		UnusedCallerWindow:    opts.UnusedCallerWindow,
		Workers:               opts.Workers,
		CountUpdatesPerSecond: opts.CountUpdatesPerSecond,
	}
	if err := intents.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up the serviceintent controller: %w", err)
	}
	if err := (&namespace.Reconciler{Client: mgr.GetClient(), DNS: opts.DNS}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the zero-trust namespace controller: %w", err)
	}
	taints := &nodetaint.Reconciler{Client: mgr.GetClient(), AgentNamespace: cmp.Or(opts.AgentNamespace, DefaultAgentNamespace)}
	if err := taints.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up the node startup-taint controller: %w", err)
	}
	if opts.CASecret.Name != "" {
		signer := &certificates.Reconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), CASecret: opts.CASecret,
			AgentUser: "system:serviceaccount:" + cmp.Or(opts.AgentNamespace, DefaultAgentNamespace) + ":" + AgentServiceAccount,
		}
		if err := signer.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("set up the certificate signer: %w", err)
		}
	}
	return nil
}
