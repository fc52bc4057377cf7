// Package signertest runs Palisade's certificate signer alone against an API
// server, for the tests of the signer and of its clients (agents,
// kubectl-palisade).
package signertest

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/palisade-dev/palisade/controllers/certificates"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// AgentUser is the agent's service account as config/ deploys it.
const AgentUser = "system:serviceaccount:palisade-system:palisade-agent"

// CASecret is where the signer keeps its CA (namespace palisade-system must
// exist).
var CASecret = types.NamespacedName{Namespace: "palisade-system", Name: certificates.DefaultCASecret}

// Start runs a manager with the signer alone, as cfg's user (RBAC of the
// controller is under test in config/), until the test ends.
func Start(t *testing.T, cfg *rest.Config) {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testenv.Scheme(t),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Each test starts its own manager in this process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &certificates.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), AgentUser: AgentUser, CASecret: CASecret}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}
