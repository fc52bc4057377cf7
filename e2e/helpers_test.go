//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/internal/localcluster"
)

func isNoKind(err error) bool { return meta.IsNoMatchError(err) }

// waitNoPolicies waits until no NetworkPolicy is left in the layout's
// namespaces (and kube-system).
func waitNoPolicies(ctx context.Context, cl client.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list networkingv1.NetworkPolicyList
		for _, ns := range append([]string{"kube-system"}, localcluster.LayoutNamespaces...) {
			var l networkingv1.NetworkPolicyList
			if err := cl.List(ctx, &l, client.InNamespace(ns)); err != nil {
				return err
			}
			list.Items = append(list.Items, l.Items...)
		}
		if len(list.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d NetworkPolicies left, e.g. %s/%s", len(list.Items), list.Items[0].Namespace, list.Items[0].Name)
		}
		for i := range list.Items {
			// Plain NetworkPolicies (not the controller's) can go right away;
			// the controller's own are removed with their intents.
			if list.Items[i].Labels["app.kubernetes.io/managed-by"] != "palisade" {
				_ = cl.Delete(ctx, &list.Items[i])
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) deleteWorkloads(ctx context.Context) error {
	for _, ns := range []string{"x", "y", "z"} {
		if err := e.c.Client.DeleteAllOf(ctx, &appsv1.Deployment{}, client.InNamespace(ns)); err != nil {
			return err
		}
	}
	return nil
}

// --- NetworkPolicy builders -------------------------------------------------

func netpol(ns, name string, podSel map[string]string, types []networkingv1.PolicyType,
	ingress []networkingv1.NetworkPolicyIngressRule, egress []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: podSel},
			PolicyTypes: types,
			Ingress:     ingress,
			Egress:      egress,
		},
	}
}

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	bothTypes   = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
)

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func labels(kv ...string) map[string]string { return sel(kv...).MatchLabels }

func expr(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func peerPod(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func peerNs(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func peerPodNs(pod, ns *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: pod, NamespaceSelector: ns}
}

func peerCIDR(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func port(proto corev1.Protocol, p int) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(int32(p))
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

func namedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	v := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

func portRange(proto corev1.Protocol, from, to int32) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(from)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v, EndPort: &to}
}

func anyPort(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

func in(ports []networkingv1.NetworkPolicyPort, peers ...networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports}
}

func out(ports []networkingv1.NetworkPolicyPort, peers ...networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports}
}

func ports(p ...networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicyPort { return p }

// egressToDNS allows what a default-deny-egress namespace needs to resolve
// names: UDP and TCP 53 to kube-system's kube-dns pods.
func egressToDNS() networkingv1.NetworkPolicyEgressRule {
	return out(ports(port(corev1.ProtocolUDP, 53), port(corev1.ProtocolTCP, 53)),
		peerPodNs(sel("k8s-app", "kube-dns"), sel("kubernetes.io/metadata.name", "kube-system")))
}

// --- expectation helpers ----------------------------------------------------

type (
	pod    = localcluster.Pod
	netIn  = networkingv1.NetworkPolicyIngressRule
	netOut = networkingv1.NetworkPolicyEgressRule
)
type pport = localcluster.Port

func is(p *pod, key string) bool { return p.Key() == key }

const (
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
)
