package servingcert_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	ctrlfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/palisade-dev/palisade/dataplane/agent/servingcert"
	"github.com/palisade-dev/palisade/internal/pki"
)

// issued is what the sink received.
type issued struct {
	cert tls.Certificate
	cas  *x509.CertPool
}

type chanSink chan issued

func (s chanSink) Set(cert tls.Certificate, cas *x509.CertPool) { s <- issued{cert, cas} }

// TestRotatorRenewsBeforeExpiry: the agent asks for its node's name and
// addresses under the agent-serving signer, hands each certificate to the
// sink, and replaces it (with a new key) after two-thirds of its life.
func TestRotatorRenewsBeforeExpiry(t *testing.T) {
	ca, err := pki.NewCA("palisade-ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Certificates valid for 1.5 s from the moment they are signed: renewed
	// after 1 s.
	const life = 1500 * time.Millisecond
	cs := fake.NewClientset()
	var n atomic.Int32
	var signErr atomic.Value
	cs.PrependReactor("create", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		csr := a.(k8stesting.CreateAction).GetObject().(*certificatesv1.CertificateSigningRequest)
		csr.Name = fmt.Sprintf("%s%d", csr.GenerateName, n.Add(1))
		if err := sign(ca, csr, life); err != nil {
			signErr.Store(err)
		}
		return false, nil, nil // the tracker stores the signed request
	})
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, {Type: corev1.NodeHostName, Address: "node-a"}}}}
	sink := make(chanSink, 4)
	r := &servingcert.Rotator{
		CSRs: cs.CertificatesV1().CertificateSigningRequests(), Nodes: ctrlfake.NewClientBuilder().WithObjects(node).Build(),
		NodeName: "node-a", Sink: sink,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	}()

	var got []issued
	for len(got) < 2 {
		select {
		case i := <-sink:
			got = append(got, i)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d certificates in 10 s, want a renewal (sign error: %v)", len(got), signErr.Load())
		}
	}
	for _, i := range got {
		leaf := i.cert.Leaf
		// Verified as of the middle of its lifetime: by now (a loaded
		// machine) the first of the short-lived certificates may be past it.
		at := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: i.cas, DNSName: "10.0.0.1", CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("certificate %s for 10.0.0.1: %v", leaf.SerialNumber, err)
		}
		if leaf.Subject.CommonName != "palisade-agent:node-a" || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "node-a" {
			t.Errorf("certificate for %q %v", leaf.Subject.CommonName, leaf.DNSNames)
		}
	}
	if got[0].cert.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(got[1].cert.Leaf.PublicKey) {
		t.Error("the renewed certificate reuses the key")
	}
	csrs, err := cs.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range csrs.Items {
		if c.Spec.SignerName != pki.SignerAgentServing || c.Spec.ExpirationSeconds == nil || *c.Spec.ExpirationSeconds != int32(pki.DefaultServingLifetime/time.Second) {
			t.Errorf("request %s: signer %s, expirationSeconds %v", c.Name, c.Spec.SignerName, c.Spec.ExpirationSeconds)
		}
	}
}

// sign issues csr's certificate valid from now for life, as the controller
// would with its CA (with no backdating, so that renewal comes quickly).
func sign(ca *pki.CA, csr *certificatesv1.CertificateSigningRequest, life time.Duration) error {
	req, err := pki.ParseRequestPEM(csr.Spec.Request)
	if err != nil {
		return err
	}
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: req.Subject, DNSNames: req.DNSNames, IPAddresses: req.IPAddresses,
		NotBefore: now, NotAfter: now.Add(life), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca.Cert, req.PublicKey, ca.Key)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	if !leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) {
		return fmt.Errorf("asked for %v", leaf.IPAddresses)
	}
	csr.Status.Certificate = pki.EncodeCertificates(leaf, ca.Cert)
	return nil
}
