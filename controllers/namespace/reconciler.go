// Package namespace reconciles zero-trust namespaces: each gets its
// default-deny and baseline NetworkPolicies while it carries the zero-trust
// label, and loses them when the label goes.
package namespace

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers/internal/netpol"
	"github.com/palisade-dev/palisade/controllers/internal/predicates"
	"github.com/palisade-dev/palisade/internal/intent"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// Reconciler keeps palisade-default-deny and palisade-baseline in
// every zero-trust namespace, and removes them when the label goes.
type Reconciler struct {
	client.Client
	DNS compiler.DNSConfig
}

// Reconcile applies or removes the namespace's two zero-trust policies.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := r.Get(ctx, req.NamespacedName, ns); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	desired := compiler.ZeroTrust(ns.Name, r.DNS)
	enforce := ns.Labels[v1alpha1.LabelZeroTrust] == v1alpha1.ZeroTrustEnforce && ns.DeletionTimestamp.IsZero()
	var errs []error
	for i := range desired {
		p := &desired[i]
		existing := &networkingv1.NetworkPolicy{}
		err := r.Get(ctx, client.ObjectKeyFromObject(p), existing)
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("get networkpolicy %s/%s: %w", p.Namespace, p.Name, err))
			continue
		}
		found := err == nil
		switch {
		case enforce:
			if !found {
				existing = nil
			}
			if action, err := netpol.Apply(ctx, r.Client, p, existing); err != nil {
				errs = append(errs, err)
			} else if action != netpol.Unchanged {
				log.FromContext(ctx).Info("zero-trust policy applied", "policy", p.Name)
			}
		case found && intent.IsManaged(existing.Labels):
			if err := netpol.Delete(ctx, r.Client, existing); err != nil {
				errs = append(errs, err)
			} else {
				log.FromContext(ctx).Info("zero-trust policy removed", "policy", p.Name)
			}
		}
	}
	return ctrl.Result{}, errors.Join(errs...)
}

// SetupWithManager registers the reconciler with the manager.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("zerotrust-namespace").
		For(&corev1.Namespace{}, builder.OnlyMetadata, builder.WithPredicates(predicates.LabelsOrLifecycle)).
		Watches(&networkingv1.NetworkPolicy{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if o.GetName() != compiler.DefaultDenyName && o.GetName() != compiler.BaselineName {
				return nil
			}
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: o.GetNamespace()}}}
		}), builder.WithPredicates(predicates.ManagedPolicy)).
		Complete(r)
}
