package kerneltest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/agent"
	"github.com/palisade-dev/palisade/dataplane/agent/agentcache"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// apiEnv is a real API server holding the cluster's Namespaces and Pods.
type apiEnv struct {
	cfg    *rest.Config
	scheme *runtime.Scheme
	c      client.Client
	// created is set once the objects exist (every backend's namespaces
	// use the same addresses, so one set of objects serves them all).
	created bool
}

func startAPI(t *testing.T) *apiEnv {
	t.Helper()
	testenv.RequireRoot(t)
	ctrllog.SetLogger(logr.Discard())
	cfg := testenv.Start(t)
	c, scheme := testenv.Client(t, cfg)
	return &apiEnv{cfg: cfg, scheme: scheme, c: c}
}

// ensureObjects creates the cluster's Namespaces and Pods and, playing the
// kubelet, writes each pod's IPs through the status subresource.
func (e *apiEnv) ensureObjects(t *testing.T, c *cluster) {
	t.Helper()
	if e.created {
		return
	}
	ctx := context.Background()
	nss, pods := c.apiObjects()
	for _, ns := range nss {
		if err := e.c.Create(ctx, ns); err != nil {
			t.Fatalf("create namespace %s: %v", ns.Name, err)
		}
	}
	for _, p := range pods {
		status := p.Status
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatalf("create pod %s/%s: %v", p.Namespace, p.Name, err)
		}
		p.Status = status
		if err := e.c.Status().Update(ctx, p); err != nil {
			t.Fatalf("pod %s/%s status: %v", p.Namespace, p.Name, err)
		}
	}
	e.created = true
}

// removePolicies deletes every NetworkPolicy, so the next scenario starts
// from none.
func (e *apiEnv) removePolicies(t *testing.T) {
	t.Helper()
	for ns := range namespace {
		if err := e.c.DeleteAllOf(context.Background(), &networkingv1.NetworkPolicy{}, client.InNamespace(ns)); err != nil {
			t.Fatalf("delete policies in %s: %v", ns, err)
		}
	}
}

func (e *apiEnv) apply(t *testing.T, p *networkingv1.NetworkPolicy) {
	t.Helper()
	ctx := context.Background()
	var cur networkingv1.NetworkPolicy
	err := e.c.Get(ctx, client.ObjectKeyFromObject(p), &cur)
	if err == nil {
		cur.Spec = p.Spec
		err = e.c.Update(ctx, &cur)
	} else {
		err = e.c.Create(ctx, p.DeepCopy())
	}
	if err != nil {
		t.Fatalf("apply policy %s/%s: %v", p.Namespace, p.Name, err)
	}
}

func (e *apiEnv) delete(t *testing.T, obj client.Object) {
	t.Helper()
	if err := e.c.Delete(context.Background(), obj); err != nil {
		t.Fatalf("delete %T %s: %v", obj, obj.GetName(), err)
	}
}

// relabel replaces one label of a pod or namespace through the API.
func (e *apiEnv) relabel(t *testing.T, obj client.Object, key, value string) {
	t.Helper()
	ctx := context.Background()
	if err := e.c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	l := obj.GetLabels()
	l[key] = value
	obj.SetLabels(l)
	if err := e.c.Update(ctx, obj); err != nil {
		t.Fatalf("relabel %s: %v", obj.GetName(), err)
	}
}

// runningAgent is the agent's sync loop, in this process, with its own
// informer cache.
type runningAgent struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
}

func (e *apiEnv) startAgent(t *testing.T, b dataplane.Backend) *runningAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := agentcache.Options()
	opts.Scheme = e.scheme
	ca, err := cache.New(e.cfg, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { _ = ca.Start(ctx) }()
	a, err := agent.New(agent.Config{NodeName: nodeA, MinInterval: 20 * time.Millisecond}, ca, b)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &runningAgent{
		a:      a,
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { r.done <- r.a.Start(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop cancels the agent's context and waits for its loop to return.
func (r *runningAgent) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// eventually probes until every probe meets its expectation.
func (c *cluster) eventually(t *testing.T, what string, probes []probe) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := c.mismatches(probes)
		if len(m) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still, after 15s:\n%s", what, strings.Join(m, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// always probes rounds times, failing on any mismatch.
func (c *cluster) always(t *testing.T, what string, rounds int, probes []probe) {
	t.Helper()
	for i := range rounds {
		if m := c.mismatches(probes); len(m) > 0 {
			t.Fatalf("%s (round %d):\n%s", what, i, strings.Join(m, "\n"))
		}
	}
}

// TestAgentFollowsTheAPI runs the agent's sync loop against a real API
// server, programming node-a's namespace, and follows policies, pod labels
// and namespace labels changed through the API into real traffic.
func TestAgentFollowsTheAPI(t *testing.T) {
	env := startAPI(t)
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			c := newCluster(t)
			env.ensureObjects(t, c)
			t.Cleanup(func() { env.removePolicies(t) })
			env.startAgent(t, bk.new(t, c.a.NS))

			c.eventually(t, "no policy", all(tcp("y/d", "x/a", 80, yes), udp("y/d", "x/a", 53, yes), tcp("x/a", "y/d", 80, yes)))

			deny := pt.Policy("x", "deny", pt.Types(ingress))
			env.apply(t, deny)
			c.eventually(t, "deny all created", join(all(tcp("y/d", "x/a", 80, no), udp("y/d", "x/a", 53, no), sctp("y/d", "x/a", 90, no),
				tcp("x/a", "y/d", 80, yes), tcp("node", "x/a", 80, yes))))

			allow := pt.Policy("x", "allow-d", pt.Selecting(app("a")),
				pt.IngressRule(pt.Peers(pt.NamespacePodPeer(map[string]string{"team": "y"}, app("d"))), pt.NamedPort(tcpP, "http")))
			env.apply(t, allow)
			c.eventually(t, "named port allowed", all(tcp("y/d", "x/a", 80, yes), tcp("y/d", "x/a", 81, no), tcp("y/b", "x/a", 80, no),
				tcp("y/r", "x/a", 80, no)))

			allow.Spec.Ingress[0].Ports = []networkingv1.NetworkPolicyPort{pt.TCP(81)}
			env.apply(t, allow)
			c.eventually(t, "policy updated to port 81", all(tcp("y/d", "x/a", 81, yes), tcp("y/d", "x/a", 80, no)))

			yd := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "y", Name: "d"}}
			env.relabel(t, yd, "app", "other")
			c.eventually(t, "peer pod relabelled away", all(tcp("y/d", "x/a", 81, no)))
			env.relabel(t, yd, "app", "d")
			c.eventually(t, "peer pod relabelled back", all(tcp("y/d", "x/a", 81, yes)))

			y := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "y"}}
			env.relabel(t, y, "team", "w")
			c.eventually(t, "peer namespace relabelled away", all(tcp("y/d", "x/a", 81, no)))
			env.relabel(t, y, "team", "y")
			c.eventually(t, "peer namespace relabelled back", all(tcp("y/d", "x/a", 81, yes)))

			env.delete(t, deny)
			c.eventually(t, "deny all deleted, allow-d still isolates x/a", all(tcp("y/d", "x/a", 81, yes), tcp("y/d", "x/a", 80, no),
				tcp("y/d", "x/b", 8080, yes)))
			env.delete(t, allow)
			c.eventually(t, "all policies deleted", all(tcp("y/d", "x/a", 80, yes), udp("y/d", "x/a", 53, yes), sctp("y/d", "x/a", 91, yes)))
		})
	}
}
