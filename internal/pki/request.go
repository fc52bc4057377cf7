package pki

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
)

// pollInterval is how often RequestCertificate reads its request back: the
// requesters may get their request by name, not watch requests (which would
// show them everyone's).
const pollInterval = 500 * time.Millisecond

// ErrRefused says the signer denied the request, or failed it.
var ErrRefused = errors.New("certificate request refused")

// Issued is a certificate a signer issued: the leaf first, then the chain,
// whose last certificate is the signer's CA.
type Issued struct {
	Chain []*x509.Certificate
	PEM   []byte
}

// Leaf is the issued certificate.
func (i *Issued) Leaf() *x509.Certificate { return i.Chain[0] }

// CA is the last certificate of the chain: the one to trust for peers of the
// same signer's CA.
func (i *Issued) CA() *x509.Certificate { return i.Chain[len(i.Chain)-1] }

// RequestCertificate creates a CertificateSigningRequest of signer for key
// and req, valid for lifetime, named generateName plus a random suffix, and
// waits until it is issued, refused (ErrRefused, with the signer's message)
// or ctx ends.
func RequestCertificate(ctx context.Context, csrs certificatesv1client.CertificateSigningRequestInterface, generateName, signer string, key crypto.Signer, req Request, lifetime time.Duration) (*Issued, error) {
	reqPEM, err := NewRequestPEM(key, req)
	if err != nil {
		return nil, err
	}
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature}
	for _, u := range ExtKeyUsage(signer) {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			usages = append(usages, certificatesv1.UsageServerAuth)
		case x509.ExtKeyUsageClientAuth:
			usages = append(usages, certificatesv1.UsageClientAuth)
		}
	}
	seconds := int32(lifetime / time.Second)
	created, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: generateName},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: reqPEM, SignerName: signer, Usages: usages, ExpirationSeconds: &seconds,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create CertificateSigningRequest of %s: %w", signer, err)
	}
	var issued *Issued
	err = wait.PollUntilContextCancel(ctx, pollInterval, false, func(ctx context.Context) (bool, error) {
		got, err := csrs.Get(ctx, created.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
			return false, fmt.Errorf("read %s back: %w", created.Name, err)
		case err != nil:
			return false, nil //nolint:nilerr // the API server is unavailable for now: keep polling until ctx ends
		}
		for _, c := range got.Status.Conditions {
			if (c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed) && c.Status == corev1.ConditionTrue {
				return false, fmt.Errorf("%w: %s %s: %s", ErrRefused, created.Name, c.Reason, c.Message)
			}
		}
		if len(got.Status.Certificate) == 0 {
			return false, nil
		}
		chain, err := ParseCertificates(got.Status.Certificate)
		if err != nil {
			return false, fmt.Errorf("certificate of %s: %w", created.Name, err)
		}
		if !publicKeysEqual(chain[0].PublicKey, key.Public()) {
			return false, fmt.Errorf("certificate of %s is not for the requested key", created.Name)
		}
		issued = &Issued{Chain: chain, PEM: got.Status.Certificate}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for CertificateSigningRequest %s: %w", created.Name, err)
	}
	return issued, nil
}
