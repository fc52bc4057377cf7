package compiler

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Unstructured converts a generated policy to the object the controller sends
// with server-side apply: only the fields Palisade sets, so it owns no others.
func Unstructured(p *networkingv1.NetworkPolicy) (*unstructured.Unstructured, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	if err != nil {
		return nil, fmt.Errorf("convert networkpolicy %s/%s: %w", p.Namespace, p.Name, err)
	}
	u := &unstructured.Unstructured{Object: obj}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	u.SetAPIVersion("networking.k8s.io/v1")
	u.SetKind("NetworkPolicy")
	return u, nil
}

// YAML renders policies as a multi-document YAML stream.
func YAML(policies []networkingv1.NetworkPolicy) ([]byte, error) {
	var out []byte
	for i := range policies {
		u, err := Unstructured(&policies[i])
		if err != nil {
			return nil, err
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("render networkpolicy %s/%s: %w", policies[i].Namespace, policies[i].Name, err)
		}
		out = append(out, "---\n"...)
		out = append(out, b...)
	}
	return out, nil
}
