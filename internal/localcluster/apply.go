package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	palisadev1alpha1 "github.com/palisade-dev/palisade/api/v1alpha1"
)

// Scheme knows the built-in types and Palisade's.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(palisadev1alpha1.AddToScheme(Scheme))
}

// fieldManager is the harness's server-side apply identity.
const fieldManager = "local-cluster"

// ApplyObject creates obj, or replaces the spec of the existing object.
func ApplyObject(ctx context.Context, cl client.Client, obj client.Object) error {
	// The controller writes the objects too (finalizers, and an intent's
	// status about once per report interval while traffic flows), so an
	// update can lose the race for the resource version: read again and
	// retry. Finalizers others put on the object are kept.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		existing := obj.DeepCopyObject().(client.Object)
		err := cl.Get(ctx, client.ObjectKeyFromObject(obj), existing)
		if apierrors.IsNotFound(err) {
			return cl.Create(ctx, obj)
		}
		if err != nil {
			return err
		}
		obj.SetResourceVersion(existing.GetResourceVersion())
		obj.SetFinalizers(existing.GetFinalizers())
		return cl.Update(ctx, obj)
	})
}

// SetLabels replaces the labels of an object (the API server keeps
// kubernetes.io/metadata.name on namespaces).
func SetLabels(ctx context.Context, cl client.Client, obj client.Object, key client.ObjectKey, labels map[string]string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := cl.Get(ctx, key, obj); err != nil {
			return err
		}
		obj.SetLabels(labels)
		return cl.Update(ctx, obj)
	})
}

// ApplyYAML server-side applies every object of a multi-document YAML file.
func ApplyYAML(ctx context.Context, cl client.Client, data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var applied []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return applied, nil
			}
			return applied, fmt.Errorf("decode yaml: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return applied, fmt.Errorf("apply %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		applied = append(applied, u)
	}
}
