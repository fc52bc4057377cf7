// Package audit compiles the intents the node agent programs itself as
// log-and-accept policies: every Audit-mode intent, and an Enforce-mode
// intent whose NetworkPolicies have not reached the agent's cache yet. It
// uses the same resolver and compiler as the controller.
package audit

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane/agent/programmed"
	"github.com/palisade-dev/palisade/internal/intent"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
	"github.com/palisade-dev/palisade/internal/intent/resolve"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Policies resolves (through r) and compiles the intents the agent
// audits, given the NetworkPolicies and Namespaces of the same cache
// snapshot. It returns the audit policies and, by policy key
// (policy.AuditKey), the intent of each.
func Policies(ctx context.Context, r client.Reader, intents []v1alpha1.ServiceIntent, enforced []*networkingv1.NetworkPolicy,
	namespaces []corev1.Namespace) ([]*networkingv1.NetworkPolicy, map[string]programmed.Ref) {
	return auditPolicies(ctx, r, intents, intentsWithPolicies(enforced), intent.ZeroTrustNamespaces(namespaces))
}

// intentsWithPolicies returns the intents ("namespace/name") that have at
// least one NetworkPolicy in the cache.
func intentsWithPolicies(nps []*networkingv1.NetworkPolicy) map[string]bool {
	out := map[string]bool{}
	for _, np := range nps {
		if ref, ok := programmed.EnforcedRef(np); ok {
			out[ref.Key()] = true
		}
	}
	return out
}

// compiledAsAudit tells whether the agent compiles an intent itself, as
// log-and-accept: every Audit-mode intent, and an Enforce-mode intent none
// of whose NetworkPolicies has reached the cache yet. The second case makes
// the switch from Audit to Enforce gapless: the agent keeps auditing until
// the controller's policies are in the same cache snapshot that stops the
// audit, so there is no sync in which the intent is neither.
func compiledAsAudit(si *v1alpha1.ServiceIntent, withPolicies map[string]bool) bool {
	if !si.DeletionTimestamp.IsZero() {
		return false
	}
	if si.Spec.Mode == v1alpha1.ModeAudit {
		return true
	}
	return !withPolicies[si.Namespace+"/"+si.Name]
}

// auditPolicies resolves and compiles the intents the agent audits, with
// the same resolver and compiler as the controller. An intent that fails to
// resolve or compile is skipped and logged: audit policies never drop, so
// skipping one loses its report, never traffic.
func auditPolicies(ctx context.Context, r client.Reader, intents []v1alpha1.ServiceIntent, withPolicies map[string]bool,
	zeroTrust map[string]labels.Set) ([]*networkingv1.NetworkPolicy, map[string]programmed.Ref) {
	logger := log.FromContext(ctx)
	var out []*networkingv1.NetworkPolicy
	refs := map[string]programmed.Ref{}
	for i := range intents {
		si := &intents[i]
		if !compiledAsAudit(si, withPolicies) {
			continue
		}
		res, err := resolve.Resolver{Reader: r}.Resolve(ctx, si, zeroTrust)
		if err != nil {
			logger.Error(err, "resolve audited intent; not auditing it", "intent", client.ObjectKeyFromObject(si))
			continue
		}
		res.Input.Generation = si.Generation
		in := res.Input
		nps, err := intent.Guard(func() ([]networkingv1.NetworkPolicy, error) { return compiler.Compile(in), nil })
		if err != nil {
			logger.Error(err, "compile audited intent; not auditing it", "intent", client.ObjectKeyFromObject(si))
			continue
		}
		ref := programmed.Ref{Namespace: si.Namespace, Name: si.Name, Generation: si.Generation, Mode: v1alpha1.ModeAudit}
		for j := range nps {
			out = append(out, &nps[j])
			refs[policy.AuditKey(nps[j].Namespace, nps[j].Name)] = ref
		}
	}
	return out, refs
}
