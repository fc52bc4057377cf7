package pki_test

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/internal/pki"
	"github.com/palisade-dev/palisade/internal/pki/pkitest"
)

func TestCARoundTripAndMismatch(t *testing.T) {
	now := time.Now()
	ca, err := pki.NewCA("palisade-ca", now)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := pki.LoadCA(pki.EncodeCertificates(ca.Cert), keyPEM)
	if err != nil || !loaded.Cert.Equal(ca.Cert) {
		t.Fatalf("LoadCA: %v", err)
	}
	other, err := pki.NewCA("other", now)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := pki.EncodeKey(other.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadCA(pki.EncodeCertificates(ca.Cert), otherKey); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("a CA certificate with another CA's key: %v", err)
	}
}

// TestIssue: a leaf carries what was asked, the given usage, is capped at the
// CA's own expiry, and cannot sign certificates.
func TestIssue(t *testing.T) {
	ca := pkitest.NewCA(t, "palisade-ca")
	leaf := pkitest.Issue(t, ca, pki.Request{CommonName: "alice"}, x509.ExtKeyUsageClientAuth, time.Now(), 100*365*24*time.Hour).Leaf
	if leaf.IsCA || leaf.Subject.CommonName != "alice" || !leaf.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("leaf CA=%v CN=%q notAfter %v (CA's %v)", leaf.IsCA, leaf.Subject.CommonName, leaf.NotAfter, ca.Cert.NotAfter)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify as client: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a flows client certificate authenticates servers")
	}
}

func TestParseRequestChecksSignature(t *testing.T) {
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	reqPEM, err := pki.NewRequestPEM(key, pki.Request{CommonName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	// Flip the last byte of the DER: the end of the signature.
	block, _ := pem.Decode(reqPEM)
	block.Bytes[len(block.Bytes)-1] ^= 0xff
	_, err = pki.ParseRequestPEM(pem.EncodeToMemory(block))
	if err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("a request with a broken signature: %v", err)
	}
}

func TestRenewAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, want := pki.RenewAt(t0, t0.Add(3*24*time.Hour)), t0.Add(2*24*time.Hour); !got.Equal(want) {
		t.Errorf("RenewAt = %v, want %v", got, want)
	}
}
