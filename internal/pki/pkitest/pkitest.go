// Package pkitest issues certificates for tests: a new key, its request,
// and the CA's certificate for it, in one call.
package pkitest

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/internal/pki"
)

// NewCA returns a new CA named name, valid from now.
func NewCA(t testing.TB, name string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// Issue returns ca's certificate for req with usage, valid from now for
// life, with its new key (and Leaf set).
func Issue(t testing.TB, ca *pki.CA, req pki.Request, usage x509.ExtKeyUsage, now time.Time, life time.Duration) tls.Certificate {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	reqPEM, err := pki.NewRequestPEM(key, req)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseRequestPEM(reqPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(csr, []x509.ExtKeyUsage{usage}, now, life)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}
