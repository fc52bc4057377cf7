package certificates

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/pki"
)

// DefaultCASecret names the Secret, in the controller's namespace, that holds
// Palisade's CA (kubernetes.io/tls: tls.crt and tls.key).
const DefaultCASecret = "palisade-ca"

// caCommonName is the subject of the CA Palisade makes.
const caCommonName = "palisade-ca"

// LoadOrCreateCA returns the CA held in the Secret key, creating the Secret
// with a new CA when there is none. Two replicas starting at once may both
// try to create it: the loser reads the winner's.
//
// reader must read the API server directly: the controller may get this one
// Secret by name, not list or watch secrets, so a cached read is refused.
func LoadOrCreateCA(ctx context.Context, reader client.Reader, writer client.Writer, key client.ObjectKey) (*pki.CA, error) {
	for range 2 {
		var s corev1.Secret
		err := reader.Get(ctx, key, &s)
		if err == nil {
			ca, err := pki.LoadCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
			if err != nil {
				return nil, fmt.Errorf("CA in Secret %s: %w", key, err)
			}
			return ca, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get CA Secret %s: %w", key, err)
		}
		ca, err := pki.NewCA(caCommonName, time.Now())
		if err != nil {
			return nil, err
		}
		keyPEM, err := pki.EncodeKey(ca.Key)
		if err != nil {
			return nil, err
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: pki.EncodeCertificates(ca.Cert), corev1.TLSPrivateKeyKey: keyPEM},
		}
		err = writer.Create(ctx, &s)
		if err == nil {
			return ca, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create CA Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("CA Secret %s was created and deleted while reading it", key)
}
