// Package serviceintent reconciles ServiceIntents into NetworkPolicies and
// reports on each intent's status what the agents observed of its traffic.
package serviceintent

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers/internal/netpol"
	"github.com/palisade-dev/palisade/controllers/observe"
	"github.com/palisade-dev/palisade/internal/intent"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
	"github.com/palisade-dev/palisade/internal/intent/resolve"
	"github.com/palisade-dev/palisade/internal/textutil"
)

// +kubebuilder:rbac:groups=palisade.dev,resources=serviceintents,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=palisade.dev,resources=serviceintents/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=palisade.dev,resources=serviceintents/finalizers,verbs=update
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;namespaces;pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets;replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=palisade.dev,resources=nodeflowreports,verbs=get;list;watch

// Reconciler turns each ServiceIntent into NetworkPolicies.
type Reconciler struct {
	client.Client
	// APIReader reads around the cache where a stale read would leave a
	// policy behind (deletion).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Compile computes an intent's policies; nil means the compiler. Tests
	// set it to inject compilation faults.
	Compile CompileFunc
	// UnusedCallerWindow is how long a declared caller may go unseen before
	// it is listed as unused; zero means the default (24h).
	UnusedCallerWindow time.Duration
	// Workers is how many intents are reconciled at once; zero means
	// DefaultWorkers.
	Workers int
	// CountUpdatesPerSecond paces status writes that change nothing but the
	// selected-pod count (see countPacer); zero means
	// DefaultCountUpdatesPerSecond, a negative value writes them at once.
	CountUpdatesPerSecond float64

	events  undeclaredEvents
	targets targetSelectors
	// counts paces status writes that only move the selected-pod count;
	// nil writes them at once.
	counts *countPacer
}

// Reconcile: get → ensure finalizer → resolve → compile (pure) → apply →
// observe, then one deferred status write (writeStatus) that records the
// outcome, success or failure.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, reterr error) {
	si := &v1alpha1.ServiceIntent{}
	if err := r.Get(ctx, req.NamespacedName, si); err != nil {
		if apierrors.IsNotFound(err) {
			r.events.forget(req.NamespacedName)
			r.targets.forget(req.NamespacedName)
			r.counts.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !si.DeletionTimestamp.IsZero() {
		r.targets.forget(req.NamespacedName)
		r.counts.forget(req.NamespacedName)
		return ctrl.Result{}, r.reconcileDelete(ctx, si)
	}
	orig := si.DeepCopy()
	var out outcome
	defer func() {
		result, reterr = r.writeStatus(ctx, orig, si, &out, reterr)
	}()
	if err := r.ensureFinalizer(ctx, si); err != nil {
		return ctrl.Result{}, err
	}
	// The finalizer patch returned the object as stored; the status patch
	// diffs against that.
	orig = si.DeepCopy()
	return ctrl.Result{}, r.reconcileNormal(ctx, si, &out)
}

// ensureFinalizer adds the finalizer that lets reconcileDelete remove the
// intent's policies in other namespaces.
func (r *Reconciler) ensureFinalizer(ctx context.Context, si *v1alpha1.ServiceIntent) error {
	if controllerutil.ContainsFinalizer(si, v1alpha1.Finalizer) {
		return nil
	}
	orig := si.DeepCopy()
	controllerutil.AddFinalizer(si, v1alpha1.Finalizer)
	if err := r.Patch(ctx, si, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("add finalizer: %w", err)
	}
	return nil
}

// outcome is what reconcileNormal learned beyond the status it computed.
type outcome struct {
	// observed is the observed part of the status; nil when the reconcile
	// failed before reading the agents' reports.
	observed *observe.Result
}

// reconcileNormal resolves, compiles and applies the intent and computes its
// status in place. An apply failure is recorded on status (PolicyApplied
// False) and returned, so the intent is retried.
func (r *Reconciler) reconcileNormal(ctx context.Context, si *v1alpha1.ServiceIntent, out *outcome) error {
	zeroTrust, err := zeroTrustNamespaces(ctx, r.Client)
	if err != nil {
		return err
	}
	res, err := resolve.Resolver{Reader: r.Client}.Resolve(ctx, si, zeroTrust)
	if err != nil {
		return err
	}
	// Recorded before the pods are listed: see targetSelectors.
	r.targets.set(client.ObjectKeyFromObject(si), res.Input.Target)
	res.Input.Owner = ownerReference(si)
	res.Input.Generation = si.Generation
	audit := si.Spec.Mode == v1alpha1.ModeAudit
	var desired []networkingv1.NetworkPolicy
	var compileErr error
	if !audit {
		desired, compileErr = r.compile(ctx, si, res.Input)
	}
	applyErr := r.applyAll(ctx, si, desired)
	pods, err := r.targetPods(ctx, si.Namespace, res.Input.Target)
	if err != nil {
		return errors.Join(applyErr, err)
	}
	observed, err := r.observe(ctx, si, res, pods)
	if err != nil {
		return errors.Join(applyErr, err)
	}
	out.observed = &observed
	names := make([]string, 0, len(desired))
	for i := range desired {
		names = append(names, desired[i].Namespace+"/"+desired[i].Name)
	}
	setStatus(si, statusInput{res: res, audit: audit, selectedPods: int32(min(len(pods), 1<<31-1)), policies: names,
		compileErr: compileErr, applyErr: applyErr, observed: &observed})
	return applyErr
}

// writeStatus is the reconcile's one status write, deferred so that every
// outcome is recorded. On success the status computed for the current
// generation is written with observedGeneration; on failure the status
// says why (Ready=False with the error, unless reconcileNormal already
// recorded it, as it does an apply failure) and observedGeneration stays
// at the last generation reconciled in full. It writes only when the
// status changed, and holds back a change of the selected-pod count alone
// (countPacer). It returns the reconcile's result and error.
func (r *Reconciler) writeStatus(ctx context.Context, orig, si *v1alpha1.ServiceIntent, out *outcome, reterr error) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	if reterr == nil {
		si.Status.ObservedGeneration = si.Generation
	} else {
		si.Status.ObservedGeneration = orig.Status.ObservedGeneration
		if out.observed == nil {
			setFailed(si, reterr)
		}
	}
	r.recordResolution(orig, si)
	var recheck time.Duration
	if out.observed != nil {
		recheck = out.observed.RecheckAfter
	}
	changed := !apiequality.Semantic.DeepEqual(orig.Status, si.Status)
	if changed && countOnly(&orig.Status, &si.Status) {
		if wait := r.counts.admit(client.ObjectKeyFromObject(si), time.Now()); wait > 0 {
			logger.V(1).Info("selected-pod count held back", "selectedPods", si.Status.SelectedPods, "wait", wait)
			return recheckLater(soonest(wait, recheck)), reterr
		}
	}
	if changed {
		if err := r.Status().Patch(ctx, si, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, errors.Join(reterr, fmt.Errorf("patch status: %w", err))
		}
		logger.V(1).Info("status updated", "ready", readyStatus(si), "observedCallers", si.Status.ObservedCallers, "denied", si.Status.Denied)
	}
	if out.observed == nil {
		return ctrl.Result{}, reterr
	}
	// Announce new undeclared callers only once the status that lists them
	// is written, so that a failed write does not announce them twice.
	eventWait := r.recordUndeclared(si, out.observed.NewUndeclared)
	return recheckLater(soonest(recheck, eventWait)), reterr
}

// recheckLater schedules the reconcile that time alone makes due (a report
// goes stale, a caller becomes unused, held-back events may go out), at low
// priority. Left to itself, controller-runtime requeues at the priority
// the request was taken at, and the priority queue keeps the higher of a
// waiting request's priority and a new one's: an intent first reconciled
// for its creation (priority 0) would carry priority 0 into every later
// pod-driven wake-up, and under pod churn a change to another intent would
// wait behind all of them.
func recheckLater(after time.Duration) ctrl.Result {
	if after <= 0 {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: after, Priority: ptr.To(handler.LowPriority)}
}

// observe computes the observed part of the status from the agents'
// reports that name the intent.
func (r *Reconciler) observe(ctx context.Context, si *v1alpha1.ServiceIntent, res *resolve.Result, pods []corev1.Pod) (observe.Result, error) {
	var reports v1alpha1.NodeFlowReportList
	seen := map[string]bool{}
	for _, key := range []string{si.Namespace + "/" + si.Name, deniedIntoKey(si.Namespace)} {
		var list v1alpha1.NodeFlowReportList
		if err := r.List(ctx, &list, client.MatchingFields{reportIndex: key}); err != nil {
			return observe.Result{}, fmt.Errorf("list nodeflowreports: %w", err)
		}
		for i := range list.Items {
			if !seen[list.Items[i].Name] {
				seen[list.Items[i].Name] = true
				reports.Items = append(reports.Items, list.Items[i])
			}
		}
	}
	nsLabels, err := r.namespaceLabels(ctx, res.Input.Callers)
	if err != nil {
		return observe.Result{}, err
	}
	return observe.Compute(observe.Input{
		Intent:          si,
		Callers:         res.Input.Callers,
		CallerStatus:    res.Callers,
		TargetPods:      pods,
		NamespaceLabels: nsLabels,
		Reports:         reports.Items,
		Now:             time.Now(),
	}, observe.Options{UnusedCallerWindow: r.UnusedCallerWindow}), nil
}

// namespaceLabels returns every namespace's labels when a caller selects
// namespaces by label, and nothing otherwise (no caller needs them).
func (r *Reconciler) namespaceLabels(ctx context.Context, callers []compiler.Caller) (map[string]labels.Set, error) {
	need := false
	for _, c := range callers {
		need = need || c.NamespaceSelector != nil
	}
	if !need {
		return nil, nil
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := r.List(ctx, list); err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	out := make(map[string]labels.Set, len(list.Items))
	for _, ns := range list.Items {
		out[ns.Name] = labels.Set(ns.Labels)
	}
	return out, nil
}

// recordUndeclared warns about new undeclared callers, at most once a
// minute per intent; it returns how long until held-back ones may go out.
func (r *Reconciler) recordUndeclared(si *v1alpha1.ServiceIntent, fresh []v1alpha1.UndeclaredCaller) time.Duration {
	msg, wait := r.events.add(client.ObjectKeyFromObject(si), fresh, time.Now())
	if msg != "" {
		r.Recorder.Eventf(si, nil, corev1.EventTypeWarning, v1alpha1.EventUndeclaredCaller, "Observe", "%s", textutil.Abbreviate(msg, 1024))
	}
	return wait
}

// soonest is the smaller positive duration (zero: none).
func soonest(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// compile runs the compile step. When it fails (or panics) the intent's
// target is isolated instead: its ingress policy without rules, and none of
// its grants. The error is reported on status, not returned: compilation is
// deterministic, so retrying the same spec cannot help; any change to the
// intent or to what it references reconciles again.
func (r *Reconciler) compile(ctx context.Context, si *v1alpha1.ServiceIntent, in compiler.Input) ([]networkingv1.NetworkPolicy, error) {
	compile := r.Compile
	if compile == nil {
		compile = compileIntent
	}
	desired, err := compileSafely(compile, in)
	if err == nil {
		return desired, nil
	}
	logger := log.FromContext(ctx)
	if p := (*intent.PanicError)(nil); errors.As(err, &p) {
		logger.Error(err, "compiling the intent panicked; isolating its target", "stack", string(p.Stack))
	} else {
		logger.Error(err, "compiling the intent failed; isolating its target")
	}
	r.Recorder.Eventf(si, nil, corev1.EventTypeWarning, v1alpha1.EventCompileFailed, "Compile", "%s; the target is isolated", textutil.Abbreviate(err.Error(), 512))
	return compiler.Isolate(in), err
}

// applyAll writes the desired policies and deletes the intent's others.
func (r *Reconciler) applyAll(ctx context.Context, si *v1alpha1.ServiceIntent, desired []networkingv1.NetworkPolicy) error {
	var existing networkingv1.NetworkPolicyList
	if err := r.List(ctx, &existing, client.MatchingFields{policyIntentIndex: client.ObjectKeyFromObject(si).String()}); err != nil {
		return fmt.Errorf("list networkpolicies: %w", err)
	}
	have := netpol.ByKey(existing.Items)
	var errs []error
	for i := range desired {
		key := client.ObjectKeyFromObject(&desired[i])
		action, err := netpol.Apply(ctx, r.Client, &desired[i], have[key])
		delete(have, key)
		switch {
		case err != nil:
			errs = append(errs, err)
			r.Recorder.Eventf(si, nil, corev1.EventTypeWarning, v1alpha1.EventApplyFailed, "Apply", "apply NetworkPolicy %s: %v", key, err)
		case action == netpol.Created:
			r.Recorder.Eventf(si, nil, corev1.EventTypeNormal, v1alpha1.EventPolicyCreated, "Apply", "created NetworkPolicy %s", key)
		case action == netpol.Updated:
			r.Recorder.Eventf(si, nil, corev1.EventTypeNormal, v1alpha1.EventPolicyUpdated, "Apply", "updated NetworkPolicy %s", key)
		}
	}
	for key, stale := range have {
		if err := netpol.Delete(ctx, r.Client, stale); err != nil {
			errs = append(errs, err)
			continue
		}
		r.Recorder.Eventf(si, nil, corev1.EventTypeNormal, v1alpha1.EventPolicyDeleted, "Delete", "deleted NetworkPolicy %s", key)
	}
	return errors.Join(errs...)
}

// reconcileDelete removes every policy of the intent, in all namespaces, then
// the finalizer. It lists through the API reader: a policy created moments
// ago may not be in the cache yet, and must not be left behind.
func (r *Reconciler) reconcileDelete(ctx context.Context, si *v1alpha1.ServiceIntent) error {
	if !controllerutil.ContainsFinalizer(si, v1alpha1.Finalizer) {
		return nil
	}
	var existing networkingv1.NetworkPolicyList
	if err := r.APIReader.List(ctx, &existing, client.MatchingLabels(intent.Labels(si.Name, si.Namespace))); err != nil {
		return fmt.Errorf("list networkpolicies: %w", err)
	}
	for i := range existing.Items {
		if err := netpol.Delete(ctx, r.Client, &existing.Items[i]); err != nil {
			return err
		}
	}
	orig := si.DeepCopy()
	controllerutil.RemoveFinalizer(si, v1alpha1.Finalizer)
	if err := r.Patch(ctx, si, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("remove finalizer: %w", err))
	}
	log.FromContext(ctx).Info("intent deleted, its NetworkPolicies removed", "policies", len(existing.Items))
	return nil
}

// targetPods lists the pods the target selects (from the cache, slimmed
// by CacheOptions).
func (r *Reconciler) targetPods(ctx context.Context, namespace string, target *metav1.LabelSelector) ([]corev1.Pod, error) {
	if target == nil {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(target)
	if err != nil {
		return nil, nil //nolint:nilerr // an unparsable selector selects nothing; the API server would reject the policy too
	}
	opts := []client.ListOption{client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}}
	if term, ok := requiredTerm(sel); ok {
		opts = append(opts, client.MatchingFields{podLabelIndex: term})
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, opts...); err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	return pods.Items, nil
}

// recordResolution warns once when the target or a caller stops resolving.
func (r *Reconciler) recordResolution(before, after *v1alpha1.ServiceIntent) {
	was := map[string]bool{}
	for _, c := range before.Status.Callers {
		was[c.Name] = c.Resolved
	}
	for _, c := range after.Status.Callers {
		if resolved, known := was[c.Name]; !c.Resolved && (!known || resolved) {
			r.Recorder.Eventf(after, nil, corev1.EventTypeWarning, v1alpha1.EventCallerNotFound, "Resolve", "caller %s: %s", c.Name, c.Message)
		}
	}
	beforeResolved := conditionReason(before, v1alpha1.ConditionResolved)
	if reason := conditionReason(after, v1alpha1.ConditionResolved); reason == v1alpha1.ReasonTargetNotFound && beforeResolved != reason {
		r.Recorder.Eventf(after, nil, corev1.EventTypeWarning, v1alpha1.EventTargetNotFound, "Resolve", "target %s does not resolve", after.Status.Target)
	}
}

func conditionReason(si *v1alpha1.ServiceIntent, condType string) string {
	for _, c := range si.Status.Conditions {
		if c.Type == condType {
			return c.Reason
		}
	}
	return ""
}

func readyStatus(si *v1alpha1.ServiceIntent) string {
	for _, c := range si.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return string(c.Status)
		}
	}
	return ""
}

func ownerReference(si *v1alpha1.ServiceIntent) *metav1.OwnerReference {
	return &metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "ServiceIntent",
		Name:               si.Name,
		UID:                si.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// zeroTrustNamespaces returns the labels of the namespaces in zero trust.
func zeroTrustNamespaces(ctx context.Context, c client.Reader) (map[string]labels.Set, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := c.List(ctx, list, client.MatchingLabels{v1alpha1.LabelZeroTrust: v1alpha1.ZeroTrustEnforce}); err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	return intent.ZeroTrustNamespaces(list.Items), nil
}
