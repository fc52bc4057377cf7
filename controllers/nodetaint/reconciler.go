// Package nodetaint lifts the agent-not-ready startup taint from a node once
// the agent pod on that node is Ready.
package nodetaint

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch

// The agent's pods carry this label (config/agent/daemonset.yaml).
const (
	agentLabel = "app.kubernetes.io/name"
	agentName  = "palisade-agent"
)

// agentNodeIndex indexes the agent's pods by spec.nodeName (other pods are
// not indexed).
const agentNodeIndex = "palisade.agentNode"

// conflictRetry is when a taint removal that lost an optimistic-lock race
// is tried again (the node's update event usually comes sooner).
const conflictRetry = time.Second

// DefaultAgentNamespace is where config/ deploys the agent DaemonSet.
const DefaultAgentNamespace = "palisade-system"

// Reconciler removes v1alpha1.TaintAgentNotReady from a node once
// the agent pod on that node is Ready, so that a cluster whose nodes
// register with the taint schedules nothing on a node before its agent has
// synced. It writes only to nodes that carry the taint, and removes only
// that taint.
type Reconciler struct {
	client.Client
	// AgentNamespace is the agent DaemonSet's namespace: only pods there
	// count, so that a look-alike pod a tenant runs elsewhere (with the
	// agent's label and a toleration) cannot untaint a node.
	AgentNamespace string
}

// Reconcile removes the taint from one node when its agent is Ready.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	node := &corev1.Node{}
	if err := r.Get(ctx, req.NamespacedName, node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !hasAgentNotReadyTaint(node) {
		return ctrl.Result{}, nil
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.MatchingFields{agentNodeIndex: node.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list agent pods of node %s: %w", node.Name, err)
	}
	taints, remove := withoutAgentNotReadyTaint(node, pods.Items)
	if !remove {
		return ctrl.Result{}, nil
	}
	patched := node.DeepCopy()
	patched.Spec.Taints = taints
	// A merge patch replaces the whole taint list: the optimistic lock
	// (resourceVersion in the patch) keeps a taint someone else added or
	// changed meanwhile from being lost.
	err := r.Patch(ctx, patched, client.MergeFromWithOptions(node, client.MergeFromWithOptimisticLock{}))
	switch {
	case apierrors.IsConflict(err):
		log.FromContext(ctx).V(1).Info("node changed before its taint was removed; retrying", "node", node.Name)
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("remove taint %s from node %s: %w", v1alpha1.TaintAgentNotReady, node.Name, err)
	}
	log.FromContext(ctx).Info("agent ready: startup taint removed", "node", node.Name, "taint", v1alpha1.TaintAgentNotReady)
	return ctrl.Result{}, nil
}

// withoutAgentNotReadyTaint decides whether the node's startup taint comes
// off: it does when the node has it and an agent pod bound to the node (not
// being deleted) is Ready. taints is then the node's taints without it, in
// their order; the others are kept as they are.
func withoutAgentNotReadyTaint(node *corev1.Node, agentPods []corev1.Pod) (taints []corev1.Taint, remove bool) {
	if !hasAgentNotReadyTaint(node) {
		return nil, false
	}
	ready := slices.ContainsFunc(agentPods, func(p corev1.Pod) bool {
		return p.Labels[agentLabel] == agentName && p.Spec.NodeName == node.Name && p.DeletionTimestamp.IsZero() && podReady(&p)
	})
	if !ready {
		return nil, false
	}
	for _, t := range node.Spec.Taints {
		if t.Key != v1alpha1.TaintAgentNotReady {
			taints = append(taints, t)
		}
	}
	return taints, true
}

func hasAgentNotReadyTaint(node *corev1.Node) bool {
	return slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == v1alpha1.TaintAgentNotReady })
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (r *Reconciler) isAgentPod(o client.Object) bool {
	return o.GetNamespace() == r.AgentNamespace && o.GetLabels()[agentLabel] == agentName
}

// taintedNode passes nodes that carry the startup taint: the others are
// never reconciled, so never written.
var taintedNode = predicate.NewPredicateFuncs(func(o client.Object) bool {
	n, ok := o.(*corev1.Node)
	return ok && hasAgentNotReadyTaint(n)
})

// agentPodChanged passes pods whose readiness, node or deletion changed
// (and their creation).
var agentPodChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, okOld := e.ObjectOld.(*corev1.Pod)
		after, okNew := e.ObjectNew.(*corev1.Pod)
		return !okOld || !okNew || podReady(before) != podReady(after) || before.Spec.NodeName != after.Spec.NodeName ||
			before.DeletionTimestamp.IsZero() != after.DeletionTimestamp.IsZero()
	},
	DeleteFunc: func(event.DeleteEvent) bool { return false },
}

// SetupWithManager registers the agent-pod index and the reconciler with
// the manager.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, agentNodeIndex, func(o client.Object) []string {
		p, ok := o.(*corev1.Pod)
		if !ok || !r.isAgentPod(p) || p.Spec.NodeName == "" {
			return nil
		}
		return []string{p.Spec.NodeName}
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("node-agent-taint").
		For(&corev1.Node{}, builder.WithPredicates(taintedNode)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			p, ok := o.(*corev1.Pod)
			if !ok || p.Spec.NodeName == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: p.Spec.NodeName}}}
		}), builder.WithPredicates(predicate.NewPredicateFuncs(r.isAgentPod), agentPodChanged)).
		Complete(r)
}
