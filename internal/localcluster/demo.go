package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// The demo: the sample shop (config/samples) on the local cluster. On real
// nodes (demo_realnodes.go) the shop is Deployments behind Services and the
// calls are requests between its containers; on simulated nodes
// (demo_simulated.go) the demo creates a pod per workload and probes from
// their network namespaces.

// DemoCall is one call the demo makes.
type DemoCall struct {
	From, To string // workloads, namespace/name
	Port     Port
	// Addr is what the caller dials on real nodes: a Service's DNS name
	// and port (simulated nodes dial the pod's address).
	Addr     string
	Declared bool   // should succeed
	Why      string // what allows or forbids it
	OK       bool   // observed
	Err      error  // the call could not be made (OK says nothing then)
}

// demoCalls are the calls the demo makes: the four the intents declare,
// DNS, and coupon-bot's, which no intent declares.
func demoCalls(c *Cluster) []DemoCall {
	dns := "kube-system/cluster-dns"
	if c.State.RealNodes {
		dns = "kube-system/coredns"
	}
	tcp := func(p int32) Port { return Port{Port: p, Protocol: corev1.ProtocolTCP} }
	calls := []DemoCall{
		{From: "shop/frontend", To: "shop/checkout", Port: tcp(8080), Addr: "checkout.shop:8080", Declared: true, Why: "intent checkout: caller frontend"},
		{From: "shop/checkout", To: "shop/orders", Port: tcp(8080), Addr: "orders.shop:8080", Declared: true, Why: "intent orders: caller checkout"},
		{From: "shop/checkout", To: "shop/payments", Port: tcp(8443), Addr: "payments.shop:8443", Declared: true, Why: "intent payments: caller Deployment checkout"},
		{From: "monitoring/prometheus", To: "shop/orders", Port: tcp(9090), Addr: "orders.shop:9090", Declared: true, Why: "intent orders: caller prometheus (port metrics)"},
		{From: "shop/frontend", To: dns, Port: Port{Port: DNSPort, Protocol: corev1.ProtocolUDP}, Addr: "kube-dns.kube-system:53", Declared: true, Why: "zero-trust baseline: DNS"},
		{From: "shop/coupon-bot", To: "shop/orders", Port: tcp(8080), Addr: "orders.shop:8080", Declared: false, Why: "undeclared: no intent names coupon-bot"},
	}
	if !c.State.RealNodes {
		// Simulated pods are probed at their own addresses.
		for i := range calls {
			calls[i].Addr = ""
		}
	}
	return calls
}

// demoCaller makes one call and reports whether it got through; an error
// means the call could not be made at all, which says nothing about policy.
type demoCaller func(ctx context.Context, call DemoCall) (bool, error)

// RunDemo deploys the shop and its intents, makes the demo's calls until
// they behave as declared, waits for the undeclared call to show on the
// orders intent's status, and prints what an SRE would look at. It returns
// an error when a call does not behave as declared.
func RunDemo(ctx context.Context, c *Cluster, repoRoot string, w io.Writer) ([]DemoCall, error) {
	samples := filepath.Join(repoRoot, "config", "samples")
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(w, "==> "+format+"\n", args...) }

	var call demoCaller
	var err error
	if c.State.RealNodes {
		say("deploying the shop: namespaces shop (zero trust) and monitoring, Deployments and Services (hack/demo/shop.yaml)")
		call, err = deployShop(ctx, c, repoRoot, say)
	} else {
		say("creating the shop: namespaces shop (zero trust) and monitoring, Deployments, Services, pods")
		call, err = createSimulatedShop(ctx, c, repoRoot)
	}
	if err != nil {
		return nil, err
	}
	say("applying the sample intents from config/samples")
	if err := applySampleIntents(ctx, c, samples); err != nil {
		return nil, err
	}
	say("making calls until enforcement settles (declared calls and one undeclared)")
	calls := demoCalls(c)
	settleErr := callUntilSettled(ctx, call, calls, demoSettleTimeout(c))

	observedErr := error(nil)
	asDeclared := !slices.ContainsFunc(calls, func(dc DemoCall) bool { return dc.Err != nil || dc.OK != dc.Declared })
	if asDeclared {
		say("waiting for the agents' flow reports to reach the intents' status (observed and undeclared callers)")
		// Repeat the undeclared call while waiting: the kernel logs drops at
		// a bounded rate, and one call may fall outside it.
		poke := func() {
			for _, dc := range calls {
				if !dc.Declared {
					_, _ = call(ctx, dc)
				}
			}
		}
		observedErr = waitUndeclared(ctx, c, "shop", "orders", "coupon-bot", poke, demoSettleTimeout(c))
	}

	if err := printDemoState(ctx, c, w, say); err != nil {
		return calls, err
	}
	fmt.Fprintln(w)
	say("calls")
	if wrong := printDemoCalls(w, calls); wrong > 0 {
		return calls, errors.Join(fmt.Errorf("%d calls did not behave as declared; %s", wrong, c.logsHint()), settleErr)
	}
	if observedErr != nil {
		return calls, fmt.Errorf("the undeclared call did not show on the intent's status: %w", observedErr)
	}
	return calls, nil
}

// demoSettleTimeout bounds the wait for enforcement and for flow reports:
// real nodes take longer (every call is an exec through the kubelet).
func demoSettleTimeout(c *Cluster) time.Duration {
	if c.State.RealNodes {
		return 2 * time.Minute
	}
	return 60 * time.Second
}

func (c *Cluster) logsHint() string {
	if c.State.RealNodes {
		return "kubectl logs -n palisade-system ds/palisade-agent shows the agents' logs"
	}
	return "agent logs are in " + filepath.Join(c.Dir, "logs")
}

// callUntilSettled makes every call, recording in each whether it got
// through, until each behaves as declared or the timeout passes: policies
// reach the agents asynchronously. The calls as last made are the demo's
// result either way; the error is a call that could not be made.
func callUntilSettled(ctx context.Context, call demoCaller, calls []DemoCall, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var wg sync.WaitGroup
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				calls[i].OK, calls[i].Err = call(ctx, calls[i])
			}()
		}
		wg.Wait()
		settled := true
		var failed error
		for i := range calls {
			if calls[i].Err != nil {
				failed = fmt.Errorf("call %s -> %s: %w", calls[i].From, calls[i].To, calls[i].Err)
			}
			settled = settled && calls[i].Err == nil && calls[i].OK == calls[i].Declared
		}
		if settled {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return failed
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// applySampleIntents applies config/samples but its kustomization and the
// namespaces (the shop applied those).
func applySampleIntents(ctx context.Context, c *Cluster, samples string) error {
	files, _ := filepath.Glob(filepath.Join(samples, "*.yaml"))
	for _, f := range files {
		if base := filepath.Base(f); base == "kustomization.yaml" || base == "namespaces.yaml" {
			continue
		}
		if err := applyFile(ctx, c, f); err != nil {
			return err
		}
	}
	return nil
}

// applyShopManifests applies the demo's namespaces and workloads.
func applyShopManifests(ctx context.Context, c *Cluster, repoRoot string) error {
	if err := applyFile(ctx, c, filepath.Join(repoRoot, "config", "samples", "namespaces.yaml")); err != nil {
		return err
	}
	return applyFile(ctx, c, filepath.Join(repoRoot, "hack", "demo", "shop.yaml"))
}

// waitUndeclared waits until the intent lists the workload as an undeclared
// caller: the flow went from the kernel's log through the node's report to
// the controller.
func waitUndeclared(ctx context.Context, c *Cluster, ns, name, workload string, poke func(), timeout time.Duration) error {
	return waitFor(timeout, fmt.Sprintf("intent %s/%s to list %s as an undeclared caller", ns, name, workload), func() error {
		poke()
		var si v1alpha1.ServiceIntent
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &si); err != nil {
			return err
		}
		for _, u := range si.Status.UndeclaredCallers {
			if u.Source.WorkloadName == workload || u.Source.Pod == workload {
				return nil
			}
		}
		return fmt.Errorf("undeclaredCallers: %+v", si.Status.UndeclaredCallers)
	})
}

func applyFile(ctx context.Context, c *Cluster, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := ApplyYAML(ctx, c.Client, b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
