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

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/kubeassets"
)

// printDemoState prints what Palisade made of the intents: their status
// and the NetworkPolicies it generated.
func printDemoState(ctx context.Context, c *Cluster, w io.Writer, say func(string, ...any)) error {
	if c.State.RealNodes {
		fmt.Fprintln(w)
		say("kubectl get pods -A -o wide   (the shop on both nodes; Palisade's controller and agents, CoreDNS)")
		c.kubectl(w, "get", "pods", "-A", "-o", "wide")
	}
	fmt.Fprintln(w)
	say("kubectl get si -A   (si: ServiceIntent)")
	c.kubectl(w, "get", "si", "-A")
	fmt.Fprintln(w)
	say("kubectl describe si -n shop orders   (who calls, who was turned away, on how many nodes it is enforced)")
	c.kubectl(w, "describe", "si", "-n", "shop", "orders")
	fmt.Fprintln(w)
	say("the NetworkPolicies Palisade generated")
	return printPolicies(ctx, c.Client, w)
}

// printDemoCalls prints the calls as a table and returns how many did not
// behave as declared.
func printDemoCalls(w io.Writer, calls []DemoCall) (wrong int) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	dialed := slices.ContainsFunc(calls, func(c DemoCall) bool { return c.Addr != "" })
	if dialed {
		fmt.Fprintln(tw, "FROM\tTO\tDIALED\tPORT\tRESULT\tWHY")
	} else {
		fmt.Fprintln(tw, "FROM\tTO\tPORT\tRESULT\tWHY")
	}
	for _, call := range calls {
		res := "ALLOWED"
		switch {
		case call.Err != nil:
			res = "ERROR"
		case !call.OK:
			res = "BLOCKED"
		}
		if call.Err != nil || call.OK != call.Declared {
			res += " (unexpected!)"
			wrong++
		}
		to := call.To
		if dialed {
			to += "\t" + call.Addr
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", call.From, to, call.Port, res, call.Why)
	}
	_ = tw.Flush()
	return wrong
}

// KubectlPath is the kubectl hack/setup-test-env.sh builds, of the
// cluster's Kubernetes version, or else the one on PATH.
func KubectlPath() string {
	if p := filepath.Join(kubeassets.Dir(), "kubectl"); fileExists(p) {
		return p
	}
	return "kubectl"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// kubectl runs kubectl against the cluster, output to w.
func (c *Cluster) kubectl(w io.Writer, args ...string) {
	cmd := exec.Command(KubectlPath(), append([]string{"--kubeconfig", c.KubeconfigPath()}, args...)...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(w, "(kubectl %s: %v)\n", strings.Join(args, " "), err)
	}
}

// printPolicies prints Palisade's NetworkPolicies, one line per rule.
func printPolicies(ctx context.Context, cl client.Client, w io.Writer) error {
	var list networkingv1.NetworkPolicyList
	if err := cl.List(ctx, &list, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}); err != nil {
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
