package agent

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/agent/audit"
	"github.com/palisade-dev/palisade/dataplane/agent/programmed"
	"github.com/palisade-dev/palisade/dataplane/flows"
	"github.com/palisade-dev/palisade/internal/intent"
	"github.com/palisade-dev/palisade/internal/policy"
)

// SyncOnce computes the desired state from the cache and applies it.
func (a *Agent) SyncOnce(ctx context.Context) error {
	logger := log.FromContext(ctx)
	start := time.Now()
	in, meta, err := a.input(ctx)
	var st policy.State
	if err == nil {
		st, err = safeCompute(policy.Compute, in)
	}
	if err == nil {
		for _, perr := range st.Errors {
			logger.Info("policy partly ignored (fails closed)", "policy", perr.Policy, "reason", perr.Err.Error())
		}
		var stats dataplane.Stats
		stats, err = a.Backend.Sync(ctx, &st)
		if err == nil {
			a.syncs.Add(1)
			a.Metrics.SyncSucceeded(time.Since(start), stats)
			if !a.ready.Swap(true) {
				logger.Info("first sync done, ready", "rules", stats.Rules, "elements", stats.SetElements, "elapsed", time.Since(start))
			}
			logger.V(1).Info("synced", "full", stats.Full, "rules", stats.Rules, "elements", stats.SetElements,
				"auditPolicies", len(in.AuditPolicies), "elapsed", time.Since(start))
			a.committed(&st, meta)
			a.afterCommit(ctx, &st)
			return nil
		}
	}
	a.Metrics.SyncFailed()
	return err
}

// safeCompute runs compute and turns a panic into an error. A poison object
// that crashed the model would otherwise crash-loop the agent on every node
// (cilium#14245); as a sync failure it leaves the last good rules in the
// kernel, fails readiness and shows in palisade_agent_sync_failures_total.
func safeCompute(compute func(policy.Input) policy.State, in policy.Input) (policy.State, error) {
	st, err := intent.Guard(func() (policy.State, error) { return compute(in), nil })
	if err != nil {
		return st, fmt.Errorf("compute policy state: %w", err)
	}
	return st, nil
}

// syncMeta is what a sync learns beside the policy input: the pods (for
// attribution) and the intent of each policy key.
type syncMeta struct {
	pods []*corev1.Pod
	refs map[string]programmed.Ref
}

// input reads the cache into the model's input. The lists share the
// cache's objects instead of deep-copying them (deep copies and their
// garbage were 40% of a sync's CPU at 10,000 pods): nothing below writes
// to them, and the informers replace an object on update rather than
// modify it, so the objects held by the flow index after this sync stay as
// they were.
func (a *Agent) input(ctx context.Context) (policy.Input, syncMeta, error) {
	in := policy.Input{NodeName: a.NodeName}
	meta := syncMeta{refs: map[string]programmed.Ref{}}
	var pods corev1.PodList
	if err := a.Cache.List(ctx, &pods, client.UnsafeDisableDeepCopy); err != nil {
		return in, meta, fmt.Errorf("list pods: %w", err)
	}
	var nss corev1.NamespaceList
	if err := a.Cache.List(ctx, &nss, client.UnsafeDisableDeepCopy); err != nil {
		return in, meta, fmt.Errorf("list namespaces: %w", err)
	}
	var nps networkingv1.NetworkPolicyList
	if err := a.Cache.List(ctx, &nps, client.UnsafeDisableDeepCopy); err != nil {
		return in, meta, fmt.Errorf("list networkpolicies: %w", err)
	}
	for i := range pods.Items {
		in.Pods = append(in.Pods, policy.PodFromAPI(&pods.Items[i]))
		meta.pods = append(meta.pods, &pods.Items[i])
	}
	for i := range nss.Items {
		in.Namespaces = append(in.Namespaces, policy.NamespaceFromAPI(&nss.Items[i]))
	}
	for i := range nps.Items {
		np := &nps.Items[i]
		in.Policies = append(in.Policies, np)
		if ref, ok := programmed.EnforcedRef(np); ok {
			meta.refs[np.Namespace+"/"+np.Name] = ref
		}
	}
	if !a.audit {
		return in, meta, nil
	}
	var intents v1alpha1.ServiceIntentList
	if err := a.Cache.List(ctx, &intents, client.UnsafeDisableDeepCopy); err != nil {
		return in, meta, fmt.Errorf("list serviceintents: %w", err)
	}
	auditPolicies, refs := audit.Policies(ctx, a.Cache, intents.Items, in.Policies, nss.Items)
	in.AuditPolicies = auditPolicies
	maps.Copy(meta.refs, refs)
	return in, meta, nil
}

// committed records what a successful sync put in the kernel: the intents
// programmed, and the state and attribution index for the flow log.
func (a *Agent) committed(st *policy.State, meta syncMeta) {
	current := a.tracker.Update(programmed.Intents(st, meta.refs), time.Now())
	prev := a.programmed.Swap(&current)
	if a.OnProgrammedChange != nil && (prev == nil || !programmed.Same(*prev, current)) {
		a.OnProgrammedChange()
	}
	if a.Flows != nil {
		intents := make(map[string]string, len(meta.refs))
		for key, ref := range meta.refs {
			intents[key] = ref.Key()
		}
		a.Flows.Update(st, flows.NewIndex(a.NodeName, meta.pods, intents))
	}
}
