package controllers_test

import (
	"context"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers"
	"github.com/palisade-dev/palisade/controllers/internal/controllertest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// Short leases keep the test fast; production uses controller-runtime's
// defaults (15 s / 10 s / 2 s). The renew deadline leaves the leader 2 s per
// renewal so that a loaded CI machine does not make it lose the lease.
const (
	testLease = 3 * time.Second
	testRenew = 2 * time.Second
	testRetry = 500 * time.Millisecond
)

// replica is one controller manager of a two-replica deployment.
type replica struct {
	name   string
	mgr    ctrl.Manager
	writes *controllertest.WriteLog
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	// err is what the manager's Start returned, once stopped.
	err error
}

// startReplica starts a manager with the real controllers. release says
// whether it releases its lease when stopped (cmd/controller does; a crashed
// process does not).
func startReplica(t *testing.T, cfg *rest.Config, name string, release bool) *replica {
	t.Helper()
	dns, err := controllers.ParseDNSConfig("kube-system", "k8s-app=kube-dns", "53/UDP,53/TCP")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, writes: &controllertest.WriteLog{}, done: make(chan error, 1)}
	r.mgr, err = ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        controllertest.NewScheme(),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		NewClient:                     controllertest.RecordingClient(r.writes),
		LeaderElection:                true,
		LeaderElectionID:              controllers.LeaderElectionID,
		LeaderElectionNamespace:       "default",
		LeaderElectionReleaseOnCancel: release,
		LeaseDuration:                 ptr.To(testLease),
		RenewDeadline:                 ptr.To(testRenew),
		RetryPeriod:                   ptr.To(testRetry),
		// Two managers in one process register controllers of equal names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("%s: manager: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if err := controllers.SetupWithManager(ctx, r.mgr, controllers.Options{DNS: dns}); err != nil {
		t.Fatalf("%s: setup: %v", name, err)
	}
	go func() { r.done <- r.mgr.Start(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop cancels the replica and waits until its manager has returned.
func (r *replica) stop() {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
}

func elected(r *replica, within time.Duration) bool {
	select {
	case <-r.mgr.Elected():
		return true
	case <-time.After(within):
		return false
	}
}

// electedNow tells whether the replica leads, without waiting.
func electedNow(r *replica) bool {
	select {
	case <-r.mgr.Elected():
		return true
	default:
		return false
	}
}

// leaseHeldThrough waits until the leader renewed the Lease at or after
// until without its holder changing in between: a replica that started
// before until had a whole lease duration to take it and did not.
func leaseHeldThrough(t *testing.T, c client.Client, until time.Time) {
	t.Helper()
	key := client.ObjectKey{Namespace: "default", Name: controllers.LeaderElectionID}
	var holder string
	deadline := until.Add(30 * time.Second)
	for {
		var l coordinationv1.Lease
		if err := c.Get(context.Background(), key, &l); err != nil {
			t.Fatalf("get lease: %v", err)
		}
		h := ptr.Deref(l.Spec.HolderIdentity, "")
		switch {
		case holder == "":
			holder = h
		case h != holder:
			t.Fatalf("the lease moved from %s to %s while its holder renewed it", holder, h)
		}
		if l.Spec.RenewTime != nil && !l.Spec.RenewTime.Time.Before(until) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease not renewed by %s since %v", holder, until)
		}
		time.Sleep(testRetry / 2)
	}
}

// TestLeaderElection runs two replicas at a time: only the leader
// reconciles. The leader is killed twice: first without releasing its lease
// (a crash: the follower waits for the lease to expire), then gracefully
// (it releases the lease, as cmd/controller does on SIGTERM). Each time the
// other replica serves a new intent within the lease duration + 5 s, and the
// old leader writes nothing once it has stopped.
func TestLeaderElection(t *testing.T) {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	cfg := testenv.Start(t)
	c, err := client.New(cfg, client.Options{Scheme: controllertest.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	h := &controllertest.Harness{Client: c}
	ns := "le"
	h.Namespace(t, ns, false)

	a := startReplica(t, cfg, "a", false)
	if !elected(a, 30*time.Second) {
		t.Fatal("replica a never became leader")
	}
	b := startReplica(t, cfg, "b", true)
	leaseHeldThrough(t, c, time.Now().Add(testLease+time.Second))
	if electedNow(b) {
		t.Fatal("replica b became leader while a holds the lease")
	}
	h.Service(t, ns, "first", map[string]string{"app": "first"})
	h.Intent(t, ns, "first", v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{ServiceRef: &v1alpha1.LocalServiceReference{Name: "first"}}})
	h.ExpectPolicies(t, []string{ns + "/palisade-first"}, ns)
	h.ExpectCondition(t, ns, "first", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	if len(a.writes.List()) == 0 {
		t.Error("the leader wrote nothing, yet the intent was served")
	}
	if w := b.writes.List(); len(w) != 0 {
		t.Errorf("the follower wrote while not leading: %v", w)
	}

	t.Run("leader crashes", func(t *testing.T) {
		failover(t, h, ns, a, b, "second")
	})
	t.Run("leader stops gracefully", func(t *testing.T) {
		rc := startReplica(t, cfg, "c", true)
		leaseHeldThrough(t, c, time.Now().Add(testLease+time.Second))
		if electedNow(rc) {
			t.Fatal("replica c became leader while b holds the lease")
		}
		failover(t, h, ns, b, rc, "third")
	})
}

// failover stops the leader, then checks that the follower takes over and
// serves a new intent within the lease duration + 5 s, and that the old
// leader writes nothing after it stopped.
func failover(t *testing.T, h *controllertest.Harness, ns string, leader, follower *replica, intent string) {
	t.Helper()
	if w := follower.writes.List(); len(w) != 0 {
		t.Errorf("the follower wrote while not leading: %v", w)
	}
	stopped := time.Now()
	leader.stop()
	if leader.err != nil {
		t.Errorf("replica %s: manager: %v", leader.name, leader.err)
	}
	leaderWrites := len(leader.writes.List())
	if !elected(follower, testLease+5*time.Second) {
		t.Fatalf("replica %s did not take over within %v", follower.name, testLease+5*time.Second)
	}
	tookOver := time.Now()
	t.Logf("replica %s leads %v after %s stopped", follower.name, tookOver.Sub(stopped).Round(time.Millisecond), leader.name)

	h.Service(t, ns, intent, map[string]string{"app": intent})
	h.Intent(t, ns, intent, v1alpha1.ServiceIntentSpec{Target: v1alpha1.Target{ServiceRef: &v1alpha1.LocalServiceReference{Name: intent}}})
	deadline := stopped.Add(testLease + 5*time.Second)
	for {
		var p networkingv1.NetworkPolicy
		err := h.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "palisade-" + intent}, &p)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no policy for intent %s %v after the leader stopped (lease %v + 5 s): %v", intent, time.Since(stopped), testLease, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(follower.writes.List()) == 0 {
		t.Error("the new intent was served, yet the new leader wrote nothing")
	}
	// The old leader stays silent: no write after it stopped, in particular
	// none after the new leader took over. Its manager has returned
	// (leader.stop waits for it) and the new leader's write is seen, so a
	// write of the old leader's would be logged by now.
	if got := len(leader.writes.List()); got != leaderWrites {
		t.Errorf("the old leader wrote %d times after it stopped: %v", got-leaderWrites, leader.writes.List()[leaderWrites:])
	}
	if last := leader.writes.LastWrite(); !last.Before(tookOver) {
		t.Errorf("the old leader wrote at %v, after %s took over at %v", last, follower.name, tookOver)
	}
}
