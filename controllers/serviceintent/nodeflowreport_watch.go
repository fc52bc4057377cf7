package serviceintent

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// reportIndex indexes NodeFlowReports by the intents ("namespace/name")
// they name: among the programmed intents, or as deciders of an ingress
// flow. An intent reads only the reports that concern it.
const reportIndex = "palisade.dev/report-intents"

// deniedIntoKey is the index key of reports holding flows that the source's
// egress policy turned away before they reached a pod of the namespace. In
// a zero-trust namespace the caller's own baseline drops an undeclared call
// at its node, so the target's node never sees it; the target's intents
// still list it as an undeclared caller.
func deniedIntoKey(namespace string) string { return "denied-into:" + namespace }

// deniedIntoPodKey is the finer key of such flows by destination pod, by
// which a report's changes wake intents: only the intents whose target
// selects the pod read them (observe.observeFlows), however many intents
// the namespace holds.
func deniedIntoPodKey(dst v1alpha1.FlowEndpoint) string {
	return deniedIntoPodPrefix + dst.Namespace + "/" + dst.Pod
}

const deniedIntoPodPrefix = "denied-into-pod:"

// reportIntents returns the index keys of a NodeFlowReport.
func reportIntents(obj client.Object) []string {
	r, ok := obj.(*v1alpha1.NodeFlowReport)
	if !ok {
		return nil
	}
	keys, _ := reportParts(r, func(dst v1alpha1.FlowEndpoint) string { return deniedIntoKey(dst.Namespace) })
	return keys
}

// reportWakeKeys returns the keys by which a report wakes intents.
func reportWakeKeys(obj client.Object) []string {
	r, ok := obj.(*v1alpha1.NodeFlowReport)
	if !ok {
		return nil
	}
	keys, _ := reportParts(r, deniedIntoPodKey)
	return keys
}

// reportPart is what a report says that concerns one key: the intent's
// programmed entry, and the flows that name the key.
type reportPart struct {
	Programmed []v1alpha1.ProgrammedIntent
	Flows      []v1alpha1.FlowRecord
}

// reportParts splits a report by key, with deniedKey keying the flows a
// source's egress policy turned away; keys lists them in the order they
// first appear.
func reportParts(r *v1alpha1.NodeFlowReport, deniedKey func(v1alpha1.FlowEndpoint) string) (keys []string, parts map[string]*reportPart) {
	parts = map[string]*reportPart{}
	part := func(key string) *reportPart {
		p := parts[key]
		if p == nil {
			p = &reportPart{}
			parts[key] = p
			keys = append(keys, key)
		}
		return p
	}
	for _, p := range r.Spec.Intents {
		pp := part(p.Namespace + "/" + p.Name)
		pp.Programmed = append(pp.Programmed, p)
	}
	for i := range r.Spec.Flows {
		f := &r.Spec.Flows[i]
		if f.Direction != v1alpha1.FlowIngress {
			if f.Verdict != v1alpha1.VerdictAllowed && f.Destination.Namespace != "" {
				pp := part(deniedKey(f.Destination))
				pp.Flows = append(pp.Flows, *f)
			}
			continue
		}
		for _, key := range f.Intents {
			pp := part(key)
			pp.Flows = append(pp.Flows, *f)
		}
	}
	return keys, parts
}

// changedReportKeys returns the wake keys whose part of the report differs
// between two versions of it. A report is rewritten at every interval (and
// at once when a sync changes what is programmed), and names every intent
// programmed on its node: waking them all at each write cost thousands of
// reconciles per report on a node with thousands of intents. Every key of
// both versions counts when what makes the report fresh changed: another
// node or interval, or an old version that had gone stale before the new
// one was written (the node's agent is back).
func changedReportKeys(old, cur *v1alpha1.NodeFlowReport) []string {
	oldKeys, oldParts := reportParts(old, deniedIntoPodKey)
	curKeys, curParts := reportParts(cur, deniedIntoPodKey)
	interval := time.Duration(max(old.Spec.IntervalSeconds, 1)) * time.Second
	staleAt := old.Spec.ReportedAt.Add(v1alpha1.ReportStaleIntervals * interval)
	all := old.Spec.NodeName != cur.Spec.NodeName || old.Spec.IntervalSeconds != cur.Spec.IntervalSeconds ||
		cur.Spec.ReportedAt.After(staleAt)
	var out []string
	for _, k := range curKeys {
		if all || oldParts[k] == nil || !apiequality.Semantic.DeepEqual(oldParts[k], curParts[k]) {
			out = append(out, k)
		}
	}
	for _, k := range oldKeys {
		if curParts[k] == nil {
			out = append(out, k)
		}
	}
	return out
}

// reportHandler enqueues the intents a report event concerns: all those it
// names when it is created or deleted, and on an update those whose part of
// it changed (changedReportKeys), an intent the node no longer names
// included.
func (r *Reconciler) reportHandler() handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	enqueue := func(ctx context.Context, q queue, keys []string) {
		for _, req := range r.intentsOfReportKeys(ctx, keys) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) { enqueue(ctx, q, reportWakeKeys(e.Object)) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			old, ok1 := e.ObjectOld.(*v1alpha1.NodeFlowReport)
			cur, ok2 := e.ObjectNew.(*v1alpha1.NodeFlowReport)
			if !ok1 || !ok2 {
				return
			}
			enqueue(ctx, q, changedReportKeys(old, cur))
		},
		DeleteFunc:  func(ctx context.Context, e event.DeleteEvent, q queue) { enqueue(ctx, q, reportWakeKeys(e.Object)) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { enqueue(ctx, q, reportWakeKeys(e.Object)) },
	}
}

// intentsOfReportKeys maps wake keys to intents: a named intent to itself,
// a denied-into-pod key to the intents whose target selects that pod (none
// when the pod is gone: no target selects it any more); malformed keys to
// nothing.
func (r *Reconciler) intentsOfReportKeys(ctx context.Context, keys []string) []reconcile.Request {
	seen := map[reconcile.Request]bool{}
	out := make([]reconcile.Request, 0, len(keys))
	add := func(req reconcile.Request) {
		if !seen[req] {
			seen[req] = true
			out = append(out, req)
		}
	}
	for _, key := range keys {
		if dst, ok := strings.CutPrefix(key, deniedIntoPodPrefix); ok {
			ns, pod, _ := strings.Cut(dst, "/")
			for _, req := range r.intentsSelectingPod(ctx, ns, pod) {
				add(req)
			}
			continue
		}
		ns, name, ok := strings.Cut(key, "/")
		if !ok || ns == "" || name == "" {
			log.FromContext(ctx).V(1).Info("malformed intent key in a NodeFlowReport; ignored", "key", key)
			continue
		}
		add(reconcile.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}})
	}
	return out
}

// intentsSelectingPod returns the intents whose last resolved target
// selects the pod (see targetSelectors).
func (r *Reconciler) intentsSelectingPod(ctx context.Context, namespace, name string) []reconcile.Request {
	if namespace == "" || name == "" {
		return nil
	}
	var pod corev1.Pod
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &pod); err != nil {
		if !apierrors.IsNotFound(err) {
			log.FromContext(ctx).Error(err, "get the destination pod of denied flows; its intents are not woken", "pod", client.ObjectKey{Namespace: namespace, Name: name})
		}
		return nil
	}
	return r.targets.intentsFor(nil, &pod)
}
