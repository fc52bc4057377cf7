package localcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the local cluster's certificate authority and the certificates the
// API server and its clients use. Everything is generated at `up` and lives
// in the state directory only.
type pki struct {
	CACert, ServingCert, ServingKey, AdminCert, AdminKey, SAPub, SAKey string // file paths
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func newKey() (*ecdsa.PrivateKey, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(k)
	return k, der, err
}

func generatePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{
		CACert:      filepath.Join(dir, "ca.crt"),
		ServingCert: filepath.Join(dir, "apiserver.crt"),
		ServingKey:  filepath.Join(dir, "apiserver.key"),
		AdminCert:   filepath.Join(dir, "admin.crt"),
		AdminKey:    filepath.Join(dir, "admin.key"),
		SAPub:       filepath.Join(dir, "sa.pub"),
		SAKey:       filepath.Join(dir, "sa.key"),
	}
	ca, err := newLocalCA(p.CACert, time.Now().Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	if err := ca.issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1"), hostIP.AsSlice()},
	}, p.ServingCert, p.ServingKey); err != nil {
		return nil, err
	}
	// system:masters: the harness, the controller and the agents act as
	// cluster admins in the local cluster; RBAC is exercised by envtest tests.
	if err := ca.issue(3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "palisade-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, p.AdminCert, p.AdminKey); err != nil {
		return nil, err
	}
	if err := writeServiceAccountKeys(p.SAKey, p.SAPub); err != nil {
		return nil, err
	}
	return p, nil
}

// localCA is the cluster's certificate authority while generatePKI runs. Its
// key signs the certificates and is then forgotten: nothing issues
// certificates later.
type localCA struct {
	cert      *x509.Certificate
	key       *ecdsa.PrivateKey
	notBefore time.Time // of every certificate, an hour back to absorb clock skew
}

// newLocalCA makes a self-signed CA valid for ten years from notBefore and
// writes its certificate to certPath.
func newLocalCA(certPath string, notBefore time.Time) (*localCA, error) {
	key, _, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "palisade-local-cluster-ca"},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create ca: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return &localCA{cert: cert, key: key, notBefore: notBefore}, nil
}

// issue signs tmpl (completed with serial, validity and key usage) for a
// new key, and writes the certificate and the key.
func (ca *localCA) issue(serial int64, tmpl *x509.Certificate, certPath, keyPath string) error {
	k, kder, err := newKey()
	if err != nil {
		return err
	}
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = ca.notBefore, ca.notBefore.Add(10*365*24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		return fmt.Errorf("issue %s: %w", tmpl.Subject.CommonName, err)
	}
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyPath, "EC PRIVATE KEY", kder)
}

// writeServiceAccountKeys writes the key pair the API server signs (private)
// and verifies (public) service account tokens with.
func writeServiceAccountKeys(keyPath, pubPath string) error {
	saKey, saDER, err := newKey()
	if err != nil {
		return err
	}
	if err := writePEM(keyPath, "EC PRIVATE KEY", saDER); err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	return writePEM(pubPath, "PUBLIC KEY", pubDER)
}
