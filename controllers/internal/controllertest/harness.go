// Package controllertest runs the controllers against a real API server
// (envtest) for the tests of every reconciler package, and records the
// writes the manager's client makes.
package controllertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// WriteLog records every write the manager's client makes, by namespace.
type WriteLog struct {
	mu     sync.Mutex
	writes []string
	// last is when the latest write was sent.
	last time.Time
}

func (w *WriteLog) Add(verb string, obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, fmt.Sprintf("%s %T %s/%s", verb, obj, obj.GetNamespace(), obj.GetName()))
	w.last = time.Now()
}

func (w *WriteLog) AddApply(obj runtime.ApplyConfiguration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, fmt.Sprintf("apply %v", obj))
	w.last = time.Now()
}

// LastWrite returns when the latest write was sent (zero: none yet).
func (w *WriteLog) LastWrite() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *WriteLog) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = nil
}

func (w *WriteLog) List() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

// withWatch lets the manager's cache-backed client pass through the
// interceptor, which wants a WatchClient; the reconcilers never watch.
type withWatch struct{ client.Client }

func (withWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, fmt.Errorf("watch is not supported")
}

// Harness is a real kube-apiserver with the real manager running against it.
type Harness struct {
	// Client reads and writes the API server directly (no cache).
	Client client.Client
	// Config reaches the API server.
	Config *rest.Config
	// Writes records every write of the manager's client.
	Writes *WriteLog
	// Cache is the manager's cache: what the controllers see.
	Cache client.Reader
}

func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// Start starts an API server and the controllers; opts may change
// the controllers' options (e.g. inject a compile fault).
func Start(t *testing.T, opts ...func(*controllers.Options)) *Harness {
	t.Helper()
	ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	cfg := testenv.Start(t)
	scheme := NewScheme()
	writes := &WriteLog{}
	dns, err := controllers.ParseDNSConfig("kube-system", "k8s-app=kube-dns", "53/UDP,53/TCP")
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		NewClient:              RecordingClient(writes),
		// Each test starts its own manager in this process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	options := controllers.Options{DNS: dns}
	for _, o := range opts {
		o(&options)
	}
	if err := controllers.SetupWithManager(ctx, mgr, options); err != nil {
		t.Fatalf("setup: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &Harness{Client: c, Config: cfg, Writes: writes, Cache: mgr.GetCache()}
}

// RecordingClient builds the manager's client so that every write it makes
// is recorded in writes.
func RecordingClient(writes *WriteLog) client.NewClientFunc {
	return func(config *rest.Config, options client.Options) (client.Client, error) {
		c, err := client.New(config, options)
		if err != nil {
			return nil, err
		}
		return interceptor.NewClient(withWatch{c}, interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				writes.Add("create", obj)
				return c.Create(ctx, obj, opts...)
			},
			Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
				writes.Add("update", obj)
				return c.Update(ctx, obj, opts...)
			},
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
				writes.Add("patch", obj)
				return c.Patch(ctx, obj, patch, opts...)
			},
			Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
				writes.Add("delete", obj)
				return c.Delete(ctx, obj, opts...)
			},
			Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
				writes.AddApply(obj)
				return c.Apply(ctx, obj, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				writes.Add("patch/"+sub, obj)
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				writes.Add("update/"+sub, obj)
				return c.SubResource(sub).Update(ctx, obj, opts...)
			},
		}), nil
	}
}

// Eventually retries check until it returns nil or the time is up.
func Eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// ReconcileCount reads controller-runtime's reconcile counter.
func ReconcileCount(t *testing.T, controller string) float64 {
	t.Helper()
	n, _ := metricSum(t, "controller_runtime_reconcile_total", "controller", controller)
	return n
}

// WaitIdle waits until each controller has nothing queued and no reconcile
// running: everything it was handed so far is done, writes included.
func WaitIdle(t *testing.T, controllers ...string) {
	t.Helper()
	Eventually(t, fmt.Sprintf("controllers %v idle", controllers), func() error {
		for _, c := range controllers {
			queued, ok := metricSum(t, "workqueue_depth", "name", c)
			if !ok {
				t.Fatalf("no workqueue_depth metric for controller %s", c)
			}
			running, ok := metricSum(t, "controller_runtime_active_workers", "controller", c)
			if !ok {
				t.Fatalf("no controller_runtime_active_workers metric for controller %s", c)
			}
			if queued != 0 || running != 0 {
				return fmt.Errorf("%s: %v requests queued, %v reconciles running", c, queued, running)
			}
		}
		return nil
	})
}

// metricSum adds up the values of the metric family's series whose label
// has the value; false when there is no such series.
func metricSum(t *testing.T, family, label, value string) (float64, bool) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	found := false
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
					found = true
				}
			}
		}
	}
	return total, found
}

func (h *Harness) Namespace(t *testing.T, name string, zeroTrust bool) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if zeroTrust {
		ns.Labels = map[string]string{v1alpha1.LabelZeroTrust: v1alpha1.ZeroTrustEnforce}
	}
	if err := h.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
}

func (h *Harness) Service(t *testing.T, ns, name string, selector map[string]string) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if err := h.Client.Create(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
}

func (h *Harness) Pod(t *testing.T, ns, name string, labels map[string]string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}
	if err := h.Client.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
}

func (h *Harness) Create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := h.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func (h *Harness) Intent(t *testing.T, ns, name string, spec v1alpha1.ServiceIntentSpec) *v1alpha1.ServiceIntent {
	t.Helper()
	si := &v1alpha1.ServiceIntent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	h.Create(t, si)
	return si
}

// UpdateIntent changes the intent's spec, retrying on conflicts.
func (h *Harness) UpdateIntent(t *testing.T, ns, name string, change func(*v1alpha1.ServiceIntent)) {
	t.Helper()
	Eventually(t, "update intent", func() error {
		si := &v1alpha1.ServiceIntent{}
		if err := h.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, si); err != nil {
			return err
		}
		change(si)
		return h.Client.Update(context.Background(), si)
	})
}

func (h *Harness) GetIntent(t *testing.T, ns, name string) *v1alpha1.ServiceIntent {
	t.Helper()
	si := &v1alpha1.ServiceIntent{}
	if err := h.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, si); err != nil {
		t.Fatal(err)
	}
	return si
}

// Policies returns the names (namespace/name) of the NetworkPolicies in ns.
func (h *Harness) Policies(t *testing.T, namespaces ...string) map[string]*networkingv1.NetworkPolicy {
	t.Helper()
	out := map[string]*networkingv1.NetworkPolicy{}
	for _, ns := range namespaces {
		var list networkingv1.NetworkPolicyList
		if err := h.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			out[ns+"/"+list.Items[i].Name] = &list.Items[i]
		}
	}
	return out
}

// ExpectPolicies is an eventually-check that the namespaces hold exactly names.
func (h *Harness) ExpectPolicies(t *testing.T, want []string, namespaces ...string) {
	t.Helper()
	Eventually(t, fmt.Sprintf("policies in %v", namespaces), func() error {
		got := h.Policies(t, namespaces...)
		if len(got) != len(want) {
			return fmt.Errorf("have %v, want %v", Keys(got), want)
		}
		for _, w := range want {
			if got[w] == nil {
				return fmt.Errorf("have %v, want %v", Keys(got), want)
			}
		}
		return nil
	})
}

func Keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func Condition(si *v1alpha1.ServiceIntent, typ string) *metav1.Condition {
	for i := range si.Status.Conditions {
		if si.Status.Conditions[i].Type == typ {
			return &si.Status.Conditions[i]
		}
	}
	return nil
}

// ExpectCondition waits until the intent's condition has status and reason
// for its current generation.
func (h *Harness) ExpectCondition(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string) *v1alpha1.ServiceIntent {
	t.Helper()
	var si *v1alpha1.ServiceIntent
	Eventually(t, fmt.Sprintf("%s/%s condition %s=%s/%s", ns, name, typ, status, reason), func() error {
		si = h.GetIntent(t, ns, name)
		c := Condition(si, typ)
		if c == nil {
			return fmt.Errorf("no %s condition", typ)
		}
		if c.Status != status || c.Reason != reason || si.Status.ObservedGeneration != si.Generation {
			return fmt.Errorf("have %s/%s (%s) at generation %d of %d", c.Status, c.Reason, c.Message, si.Status.ObservedGeneration, si.Generation)
		}
		return nil
	})
	return si
}
