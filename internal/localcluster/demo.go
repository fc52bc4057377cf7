package localcluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// The demo: the sample shop (config/samples) on the local cluster.

// DemoCall is one call the demo makes.
type DemoCall struct {
	From, To string // pod keys
	Port     Port
	Declared bool   // should succeed
	Why      string // what allows or forbids it
	OK       bool   // observed
}

func demoPods() []PodSpec {
	p := func(name string, port int32) corev1.ContainerPort {
		return corev1.ContainerPort{Name: name, ContainerPort: port, Protocol: corev1.ProtocolTCP}
	}
	app := func(v string) map[string]string { return map[string]string{"app": v} }
	return []PodSpec{
		{Namespace: "shop", Name: "frontend", Node: "node-1", Labels: app("frontend"), Ports: []corev1.ContainerPort{p("http", 8080)}},
		{Namespace: "shop", Name: "checkout", Node: "node-2", Labels: app("checkout"), Ports: []corev1.ContainerPort{p("http", 8080)}},
		{Namespace: "shop", Name: "orders", Node: "node-1", Labels: app("orders"), Ports: []corev1.ContainerPort{p("http", 8080), p("metrics", 9090)}},
		{Namespace: "shop", Name: "payments", Node: "node-2", Labels: app("payments"), Ports: []corev1.ContainerPort{p("https", 8443), p("webhooks", 9443)}},
		{Namespace: "shop", Name: "coupon-bot", Node: "node-2", Labels: app("coupon-bot"), Ports: []corev1.ContainerPort{p("http", 8080)}},
		{Namespace: "monitoring", Name: "prometheus", Node: "node-2", Labels: map[string]string{"app.kubernetes.io/name": "prometheus"}, Ports: []corev1.ContainerPort{p("web", 9090)}},
	}
}

func demoCalls() []DemoCall {
	tcp := func(p int32) Port { return Port{Port: p, Protocol: corev1.ProtocolTCP} }
	return []DemoCall{
		{From: "shop/frontend", To: "shop/checkout", Port: tcp(8080), Declared: true, Why: "intent checkout: caller frontend"},
		{From: "shop/checkout", To: "shop/orders", Port: tcp(8080), Declared: true, Why: "intent orders: caller checkout"},
		{From: "shop/checkout", To: "shop/payments", Port: tcp(8443), Declared: true, Why: "intent payments: caller Deployment checkout"},
		{From: "monitoring/prometheus", To: "shop/orders", Port: tcp(9090), Declared: true, Why: "intent orders: caller prometheus (port metrics)"},
		{From: "shop/frontend", To: "kube-system/cluster-dns", Port: Port{Port: DNSPort, Protocol: corev1.ProtocolUDP}, Declared: true, Why: "zero-trust baseline: DNS"},
		{From: "shop/coupon-bot", To: "shop/orders", Port: tcp(8080), Declared: false, Why: "undeclared: no intent names coupon-bot"},
	}
}

// RunDemo deploys the shop and its intents, makes the demo's calls until
// they behave as declared (or a minute passes), and prints what an SRE would
// look at. It returns an error when a call does not behave as declared.
func RunDemo(ctx context.Context, c *Cluster, repoRoot string, w io.Writer) ([]DemoCall, error) {
	samples := filepath.Join(repoRoot, "config", "samples")
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(w, "==> "+format+"\n", args...) }

	say("creating the shop: namespaces shop (zero trust) and monitoring, Deployments, Services, pods")
	pods, err := createShop(ctx, c, repoRoot)
	if err != nil {
		return nil, err
	}
	say("applying the sample intents from config/samples")
	if err := applySampleIntents(ctx, c, samples); err != nil {
		return nil, err
	}
	say("making calls until enforcement settles (declared calls and one undeclared)")
	calls := demoCalls()
	if err := callUntilSettled(pods, calls, 60*time.Second); err != nil {
		return nil, err
	}

	say("waiting for the agents' flow reports to reach the intents' status (observed and undeclared callers)")
	// Repeat the undeclared call while waiting: the kernel logs drops at a
	// bounded rate, and one call may fall outside it.
	poke := func() {
		for _, call := range calls {
			if !call.Declared {
				_ = ProbeOnce(pods[call.From], pods[call.To], call.Port, 100*time.Millisecond)
			}
		}
	}
	observedErr := waitUndeclared(ctx, c, "shop", "orders", "coupon-bot", poke, 45*time.Second)

	if err := printDemoState(ctx, c, w, say); err != nil {
		return calls, err
	}
	fmt.Fprintln(w)
	say("calls")
	if wrong := printDemoCalls(w, calls); wrong > 0 {
		return calls, fmt.Errorf("%d calls did not behave as declared; agent logs are in %s", wrong, filepath.Join(c.Dir, "logs"))
	}
	if observedErr != nil {
		return calls, fmt.Errorf("the undeclared call did not show on the intent's status: %w", observedErr)
	}
	return calls, nil
}

// createShop applies the demo's namespaces and workloads and creates the
// demo pods, and returns them by namespace/name. A second run on the same
// cluster reuses the pods it finds.
func createShop(ctx context.Context, c *Cluster, repoRoot string) (map[string]*Pod, error) {
	if err := applyFile(ctx, c, filepath.Join(repoRoot, "config", "samples", "namespaces.yaml")); err != nil {
		return nil, err
	}
	if err := applyFile(ctx, c, filepath.Join(repoRoot, "hack", "demo", "shop.yaml")); err != nil {
		return nil, err
	}
	pods := map[string]*Pod{}
	existing, err := c.Pods(ctx)
	if err != nil {
		return nil, err
	}
	for i := range existing {
		pods[existing[i].Key()] = &existing[i]
	}
	g, gctx := errgroup.WithContext(ctx)
	results := make([]*Pod, len(demoPods()))
	for i, spec := range demoPods() {
		if p, ok := pods[spec.Namespace+"/"+spec.Name]; ok {
			results[i] = p
			continue
		}
		// A cluster with fewer nodes than the demo names puts the rest on
		// the first node.
		if _, ok := c.Node(spec.Node); !ok {
			spec.Node = c.State.Nodes[0].Name
		}
		g.Go(func() error {
			p, err := c.CreatePod(gctx, spec)
			results[i] = p
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, p := range results {
		pods[p.Key()] = p
	}
	return pods, nil
}

// applySampleIntents applies config/samples but its kustomization and the
// namespaces (createShop applied those).
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

// callUntilSettled makes every call, recording in each whether it got
// through, until each behaves as declared or the timeout passes: policies
// reach the agents asynchronously. The calls as last made are the demo's
// result either way.
func callUntilSettled(pods map[string]*Pod, calls []DemoCall, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		settled := true
		for i := range calls {
			from, to := pods[calls[i].From], pods[calls[i].To]
			if from == nil || to == nil {
				return fmt.Errorf("demo pod %s or %s is missing", calls[i].From, calls[i].To)
			}
			calls[i].OK = ProbeOnce(from, to, calls[i].Port, 700*time.Millisecond) == nil
			settled = settled && calls[i].OK == calls[i].Declared
		}
		if settled || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// printDemoState prints what Palisade made of the intents: their status
// and the NetworkPolicies it generated.
func printDemoState(ctx context.Context, c *Cluster, w io.Writer, say func(string, ...any)) error {
	fmt.Fprintln(w)
	say("kubectl get serviceintents -A -o wide")
	c.kubectl(w, "get", "serviceintents", "-A", "-o", "wide")
	fmt.Fprintln(w)
	say("kubectl describe serviceintent -n shop orders   (who calls, who was turned away, on how many nodes it is enforced)")
	c.kubectl(w, "describe", "serviceintent", "-n", "shop", "orders")
	fmt.Fprintln(w)
	say("the NetworkPolicies Palisade generated")
	return printPolicies(ctx, c.Client, w)
}

// printDemoCalls prints the calls as a table and returns how many did not
// behave as declared.
func printDemoCalls(w io.Writer, calls []DemoCall) (wrong int) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tPORT\tRESULT\tWHY")
	for _, call := range calls {
		res := "ALLOWED"
		if !call.OK {
			res = "BLOCKED"
		}
		if call.OK != call.Declared {
			res += " (unexpected!)"
			wrong++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", call.From, call.To, call.Port, res, call.Why)
	}
	_ = tw.Flush()
	return wrong
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

// kubectl runs kubectl against the cluster, output to w.
func (c *Cluster) kubectl(w io.Writer, args ...string) {
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", c.KubeconfigPath()}, args...)...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(w, "(kubectl %s: %v)\n", strings.Join(args, " "), err)
	}
}

// printPolicies prints Palisade's NetworkPolicies, one line per rule.
func printPolicies(ctx context.Context, cl client.Client, w io.Writer) error {
	var list networkingv1.NetworkPolicyList
	if err := cl.List(ctx, &list, client.MatchingLabels{"app.kubernetes.io/managed-by": "palisade"}); err != nil {
		return err
	}
	sort.Slice(list.Items, func(i, j int) bool {
		return list.Items[i].Namespace+"/"+list.Items[i].Name < list.Items[j].Namespace+"/"+list.Items[j].Name
	})
	for _, np := range list.Items {
		var types []string
		for _, t := range np.Spec.PolicyTypes {
			types = append(types, string(t))
		}
		fmt.Fprintf(w, "%s/%s  pods: %s  types: %s\n", np.Namespace, np.Name, selectorString(&np.Spec.PodSelector), strings.Join(types, ","))
		for _, r := range np.Spec.Ingress {
			fmt.Fprintf(w, "    ingress from %s on %s\n", peersString(r.From), portsString(r.Ports))
		}
		for _, r := range np.Spec.Egress {
			fmt.Fprintf(w, "    egress to %s on %s\n", peersString(r.To), portsString(r.Ports))
		}
	}
	return nil
}

func selectorString(s *metav1.LabelSelector) string {
	if s == nil {
		return "-"
	}
	str := metav1.FormatLabelSelector(s)
	if str == "<none>" {
		return "all"
	}
	return str
}

func peersString(peers []networkingv1.NetworkPolicyPeer) string {
	if len(peers) == 0 {
		return "anywhere"
	}
	var out []string
	for _, p := range peers {
		switch {
		case p.IPBlock != nil:
			s := "cidr " + p.IPBlock.CIDR
			if len(p.IPBlock.Except) > 0 {
				s += " except " + strings.Join(p.IPBlock.Except, ",")
			}
			out = append(out, s)
		case p.NamespaceSelector != nil && p.PodSelector != nil:
			out = append(out, "pods "+selectorString(p.PodSelector)+" in namespaces "+selectorString(p.NamespaceSelector))
		case p.NamespaceSelector != nil:
			out = append(out, "namespaces "+selectorString(p.NamespaceSelector))
		default:
			out = append(out, "pods "+selectorString(p.PodSelector))
		}
	}
	slices.Sort(out)
	return strings.Join(out, " | ")
}

func portsString(ports []networkingv1.NetworkPolicyPort) string {
	if len(ports) == 0 {
		return "all ports"
	}
	var out []string
	for _, p := range ports {
		proto := "TCP"
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		s := proto
		if p.Port != nil {
			s += "/" + p.Port.String()
			if p.EndPort != nil {
				s += fmt.Sprintf("-%d", *p.EndPort)
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}
