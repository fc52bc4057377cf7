package agent

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
	"github.com/palisade-dev/palisade/internal/intent/resolve"
	"github.com/palisade-dev/palisade/internal/policy"
)

// intentRef is the intent a policy of the computed state belongs to, and
// the generation and mode it was programmed from.
type intentRef struct {
	Namespace  string
	Name       string
	Generation int64
	Mode       v1alpha1.IntentMode
}

func (r intentRef) key() string { return r.Namespace + "/" + r.Name }

// enforcedRef returns the intent of a NetworkPolicy from the labels the
// controller puts on it; false for policies that are not an intent's.
// A policy without the generation label (written by an older controller)
// reports generation 0: programmed, but at no generation the controller
// can match.
func enforcedRef(np *networkingv1.NetworkPolicy) (intentRef, bool) {
	name, ns := np.Labels[v1alpha1.LabelIntent], np.Labels[v1alpha1.LabelIntentNamespace]
	if name == "" || ns == "" {
		return intentRef{}, false
	}
	gen, _ := strconv.ParseInt(np.Labels[v1alpha1.LabelIntentGeneration], 10, 64)
	return intentRef{Namespace: ns, Name: name, Generation: gen, Mode: v1alpha1.ModeEnforce}, true
}

// intentsWithPolicies returns the intents ("namespace/name") that have at
// least one NetworkPolicy in the cache.
func intentsWithPolicies(nps []*networkingv1.NetworkPolicy) map[string]bool {
	out := map[string]bool{}
	for _, np := range nps {
		if ref, ok := enforcedRef(np); ok {
			out[ref.key()] = true
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

// zeroTrustNamespaces returns the labels of the namespaces in zero trust,
// as the controller's resolver takes them.
func zeroTrustNamespaces(nss []corev1.Namespace) map[string]labels.Set {
	out := map[string]labels.Set{}
	for i := range nss {
		if nss[i].Labels[v1alpha1.LabelZeroTrust] == v1alpha1.ZeroTrustEnforce {
			out[nss[i].Name] = labels.Set(nss[i].Labels)
		}
	}
	return out
}

// auditPolicies resolves and compiles the intents the agent audits, with
// the same resolver and compiler as the controller. An intent that fails to
// resolve or compile is skipped and logged: audit policies never drop, so
// skipping one loses its report, never traffic.
func auditPolicies(ctx context.Context, r client.Reader, intents []v1alpha1.ServiceIntent, withPolicies map[string]bool,
	zeroTrust map[string]labels.Set) ([]*networkingv1.NetworkPolicy, map[string]intentRef) {
	logger := log.FromContext(ctx)
	var out []*networkingv1.NetworkPolicy
	refs := map[string]intentRef{}
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
		nps, err := safeCompile(res.Input)
		if err != nil {
			logger.Error(err, "compile audited intent; not auditing it", "intent", client.ObjectKeyFromObject(si))
			continue
		}
		ref := intentRef{Namespace: si.Namespace, Name: si.Name, Generation: si.Generation, Mode: v1alpha1.ModeAudit}
		for j := range nps {
			out = append(out, &nps[j])
			refs[policy.AuditKey(nps[j].Namespace, nps[j].Name)] = ref
		}
	}
	return out, refs
}

func safeCompile(in compiler.Input) (nps []networkingv1.NetworkPolicy, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compile: panic: %v", r)
		}
	}()
	return compiler.Compile(in), nil
}
