// Package netpol writes and deletes the NetworkPolicies Palisade generates,
// for every reconciler that owns some: one field manager, and no write when
// the policy in the cache already matches.
package netpol

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// FieldManager is the server-side apply field manager of every write.
const FieldManager = "palisade"

// Action says what Apply did.
type Action int

const (
	// Unchanged: the policy already matched; nothing was written.
	Unchanged Action = iota
	// Created: the policy did not exist.
	Created
	// Updated: the policy existed and was rewritten.
	Updated
)

// Apply writes the desired policy with server-side apply unless the
// existing one (from the cache) already matches: a reconcile that changes
// nothing writes nothing.
func Apply(ctx context.Context, c client.Client, desired *networkingv1.NetworkPolicy, existing *networkingv1.NetworkPolicy) (Action, error) {
	if existing != nil && upToDate(desired, existing) {
		return Unchanged, nil
	}
	u, err := compiler.Unstructured(desired)
	if err != nil {
		return Unchanged, err
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return Unchanged, fmt.Errorf("apply networkpolicy %s/%s: %w", desired.Namespace, desired.Name, err)
	}
	if existing == nil {
		return Created, nil
	}
	return Updated, nil
}

// upToDate reports whether existing holds everything Palisade sets.
func upToDate(desired, existing *networkingv1.NetworkPolicy) bool {
	for k, v := range desired.Labels {
		if existing.Labels[k] != v {
			return false
		}
	}
	if !apiequality.Semantic.DeepEqual(desired.OwnerReferences, existing.OwnerReferences) && len(desired.OwnerReferences) > 0 {
		return false
	}
	return apiequality.Semantic.DeepEqual(desired.Spec, existing.Spec)
}

// Delete removes a policy Palisade no longer wants; gone already is fine.
func Delete(ctx context.Context, c client.Client, p *networkingv1.NetworkPolicy) error {
	if err := c.Delete(ctx, p, client.Preconditions{UID: &p.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete networkpolicy %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// ByKey indexes policies by namespace/name.
func ByKey(items []networkingv1.NetworkPolicy) map[client.ObjectKey]*networkingv1.NetworkPolicy {
	out := make(map[client.ObjectKey]*networkingv1.NetworkPolicy, len(items))
	for i := range items {
		out[client.ObjectKeyFromObject(&items[i])] = &items[i]
	}
	return out
}
