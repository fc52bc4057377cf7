package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/internal/pki"
)

// flowsCertFiles are the files flows-cert wrote, and for whom.
type flowsCertFiles struct {
	Key, Cert, CA string
	User          string
	NotAfter      time.Time
}

// requestFlowsCert asks Palisade's flows-client signer for a certificate
// naming the current user and writes it, its key and the CA into dir.
func requestFlowsCert(ctx context.Context, cs kubernetes.Interface, dir string, lifetime time.Duration) (*flowsCertFiles, error) {
	// The signer issues a certificate that names its requester only: ask the
	// API server who that is.
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("who am I (SelfSubjectReview): %w", err)
	}
	user := review.Status.UserInfo.Username
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	issued, err := pki.RequestCertificate(ctx, cs.CertificatesV1().CertificateSigningRequests(), "palisade-flows-client-",
		pki.SignerFlowsClient, key, pki.Request{CommonName: user}, lifetime)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	files := &flowsCertFiles{
		Key: filepath.Join(dir, "flows.key"), Cert: filepath.Join(dir, "flows.crt"), CA: filepath.Join(dir, "ca.crt"),
		User: user, NotAfter: issued.Leaf().NotAfter,
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{files.Key, keyPEM, 0o600},
		{files.Cert, pki.EncodeCertificates(issued.Leaf()), 0o644},
		{files.CA, pki.EncodeCertificates(issued.CA()), 0o644},
	} {
		if err := writeFile(f.path, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// writeFile replaces path with data, never leaving a key readable by
// others, even for a moment.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
