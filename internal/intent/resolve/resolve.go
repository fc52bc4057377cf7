// Package resolve looks up the references of a ServiceIntent (Services,
// workloads) and turns them into the selectors the compiler takes. The
// controller resolves every intent; agents resolve Audit-mode intents, which
// they compile themselves.
package resolve

import (
	"cmp"
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// Result is an intent with its references looked up.
type Result struct {
	Input compiler.Input
	// Target describes the target for status, e.g. Service/orders.
	Target string
	// TargetMessage explains an unresolved target; empty when it resolved.
	TargetMessage string
	// Callers are the callers' resolution, in spec order.
	Callers []v1alpha1.CallerStatus
}

// notFoundError is a reference that does not resolve: reported, not retried.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

// Resolver looks references up, usually in a manager's cache.
type Resolver struct {
	client.Reader
}

// Resolve turns every reference of the intent into a selector. Missing
// references are reported and grant nothing; API errors are returned.
func (r Resolver) Resolve(ctx context.Context, si *v1alpha1.ServiceIntent, zeroTrust map[string]labels.Set) (*Result, error) {
	res := &Result{Input: compiler.Input{Name: si.Name, Namespace: si.Namespace}}
	target, desc, err := r.resolveTarget(ctx, si)
	res.Target = desc
	switch e := err.(type) {
	case nil:
		res.Input.Target = target
	case *notFoundError:
		res.TargetMessage = e.msg
	default:
		return nil, err
	}

	for i := range si.Spec.Callers {
		c := &si.Spec.Callers[i]
		rc, err := r.resolveCaller(ctx, si.Namespace, c, zeroTrust)
		rc.Name = compiler.CallerName(i, c)
		st := v1alpha1.CallerStatus{Name: rc.Name, Kind: compiler.CallerKind(c), Resolved: err == nil}
		if nf, ok := err.(*notFoundError); ok {
			st.Message = nf.msg
		} else if err != nil {
			return nil, err
		}
		rc.Resolved = err == nil
		res.Input.Callers = append(res.Input.Callers, rc)
		res.Callers = append(res.Callers, st)
	}
	return res, nil
}

func (r Resolver) resolveTarget(ctx context.Context, si *v1alpha1.ServiceIntent) (*metav1.LabelSelector, string, error) {
	t := si.Spec.Target
	switch {
	case t.ServiceRef != nil:
		sel, err := r.serviceSelector(ctx, si.Namespace, t.ServiceRef.Name)
		return sel, compiler.KindService + "/" + t.ServiceRef.Name, err
	case t.WorkloadRef != nil:
		sel, err := r.workloadSelector(ctx, si.Namespace, t.WorkloadRef.Kind, t.WorkloadRef.Name)
		return sel, string(t.WorkloadRef.Kind) + "/" + t.WorkloadRef.Name, err
	case t.PodSelector != nil:
		sel := compiler.LabelSelector(t.PodSelector)
		return sel, "Pods/" + metav1.FormatLabelSelector(sel), nil
	}
	return nil, "", &notFoundError{msg: "target names no serviceRef, workloadRef or podSelector"}
}

func (r Resolver) resolveCaller(ctx context.Context, intentNS string, c *v1alpha1.Caller, zeroTrust map[string]labels.Set) (compiler.Caller, error) {
	out := compiler.Caller{Ports: compiler.Ports(c.Ports)}
	var err error
	switch {
	case c.ServiceRef != nil:
		out.Namespace = cmp.Or(c.ServiceRef.Namespace, intentNS)
		out.PodSelector, err = r.serviceSelector(ctx, out.Namespace, c.ServiceRef.Name)
	case c.WorkloadRef != nil:
		out.Namespace = cmp.Or(c.WorkloadRef.Namespace, intentNS)
		out.PodSelector, err = r.workloadSelector(ctx, out.Namespace, c.WorkloadRef.Kind, c.WorkloadRef.Name)
	case c.IPBlock != nil:
		out.IPBlock = compiler.IPBlock(c.IPBlock)
		return out, nil
	case c.NamespaceSelector != nil:
		out.NamespaceSelector = compiler.LabelSelector(c.NamespaceSelector)
		out.PodSelector = compiler.LabelSelector(c.PodSelector)
		nsSel, convErr := metav1.LabelSelectorAsSelector(out.NamespaceSelector)
		if convErr != nil {
			return out, &notFoundError{msg: fmt.Sprintf("invalid namespaceSelector: %v", convErr)}
		}
		for ns, set := range zeroTrust {
			if nsSel.Matches(set) {
				out.EgressNamespaces = append(out.EgressNamespaces, ns)
			}
		}
		return out, nil
	default:
		out.Namespace = intentNS
		out.PodSelector = compiler.LabelSelector(c.PodSelector)
	}
	if err != nil {
		return out, err
	}
	if _, ok := zeroTrust[out.Namespace]; ok {
		out.EgressNamespaces = []string{out.Namespace}
	}
	return out, nil
}

// serviceSelector returns the Service's spec.selector. A Service without a
// selector picks no pods Palisade can name, so it does not resolve.
func (r Resolver) serviceSelector(ctx context.Context, namespace, name string) (*metav1.LabelSelector, error) {
	var svc corev1.Service
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &notFoundError{msg: fmt.Sprintf("Service %s/%s not found", namespace, name)}
		}
		return nil, fmt.Errorf("get service %s/%s: %w", namespace, name, err)
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, &notFoundError{msg: fmt.Sprintf("Service %s/%s has no selector", namespace, name)}
	}
	return &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, nil
}

// workloadSelector returns the selector of the workload's pods: spec.selector,
// or for a CronJob its job template's selector or pod template labels.
func (r Resolver) workloadSelector(ctx context.Context, namespace string, kind v1alpha1.WorkloadKind, name string) (*metav1.LabelSelector, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	var sel *metav1.LabelSelector
	var err error
	switch kind {
	case v1alpha1.WorkloadDeployment:
		sel, err = selectorOf(ctx, r, key, func(o *appsv1.Deployment) *metav1.LabelSelector { return o.Spec.Selector })
	case v1alpha1.WorkloadStatefulSet:
		sel, err = selectorOf(ctx, r, key, func(o *appsv1.StatefulSet) *metav1.LabelSelector { return o.Spec.Selector })
	case v1alpha1.WorkloadDaemonSet:
		sel, err = selectorOf(ctx, r, key, func(o *appsv1.DaemonSet) *metav1.LabelSelector { return o.Spec.Selector })
	case v1alpha1.WorkloadReplicaSet:
		sel, err = selectorOf(ctx, r, key, func(o *appsv1.ReplicaSet) *metav1.LabelSelector { return o.Spec.Selector })
	case v1alpha1.WorkloadJob:
		sel, err = selectorOf(ctx, r, key, func(o *batchv1.Job) *metav1.LabelSelector {
			return selectorOrTemplate(o.Spec.Selector, o.Spec.Template.Labels)
		})
	case v1alpha1.WorkloadCronJob:
		// Jobs of a CronJob get their selector only when created; the pod
		// template's labels are what all of them carry.
		sel, err = selectorOf(ctx, r, key, func(o *batchv1.CronJob) *metav1.LabelSelector {
			return selectorOrTemplate(o.Spec.JobTemplate.Spec.Selector, o.Spec.JobTemplate.Spec.Template.Labels)
		})
	default:
		return nil, &notFoundError{msg: fmt.Sprintf("unsupported workload kind %q", kind)}
	}
	if apierrors.IsNotFound(err) {
		return nil, &notFoundError{msg: fmt.Sprintf("%s %s/%s not found", kind, namespace, name)}
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", kind, namespace, name, err)
	}
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		// An empty selector would select every pod of the namespace: fail closed.
		return nil, &notFoundError{msg: fmt.Sprintf("%s %s/%s has no pod selector", kind, namespace, name)}
	}
	return sel.DeepCopy(), nil
}

// selectorOf reads the workload at key and returns its pod selector.
func selectorOf[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, r Resolver, key client.ObjectKey, selector func(PT) *metav1.LabelSelector) (*metav1.LabelSelector, error) {
	o := PT(new(T))
	if err := r.Get(ctx, key, o); err != nil {
		return nil, err
	}
	return selector(o), nil
}

// selectorOrTemplate is a Job's selector or, before the API server has
// defaulted it, its pod template's labels.
func selectorOrTemplate(sel *metav1.LabelSelector, template map[string]string) *metav1.LabelSelector {
	if sel == nil && len(template) > 0 {
		return &metav1.LabelSelector{MatchLabels: template}
	}
	return sel
}
