// Package servingcert keeps the agent's flow API serving certificate: a key
// made in memory (it never leaves the process), a CertificateSigningRequest
// of signer palisade.dev/agent-serving for the node's name and addresses,
// which Palisade's controller signs, and a new key and certificate after
// two-thirds of each one's life.
package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/palisade-dev/palisade/internal/pki"
)

// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests,verbs=create;get

// Sink receives each certificate issued, with the pool of its CA, which also
// issues the clients it should accept (hubble.MutualTLS).
type Sink interface {
	Set(cert tls.Certificate, clientCAs *x509.CertPool)
}

// Backoff bounds the wait between two failed requests (the controller is
// down, or refused).
const (
	minRetry = time.Second
	maxRetry = 5 * time.Minute
)

// Rotator requests and renews the serving certificate. It is a
// controller-runtime Runnable that runs on every agent (no leader election).
type Rotator struct {
	CSRs certificatesv1client.CertificateSigningRequestInterface
	// Nodes reads the agent's Node, for its addresses.
	Nodes    client.Reader
	NodeName string
	Sink     Sink
	// Lifetime is what the agent asks for (pki.DefaultServingLifetime
	// when zero); the signer may issue less.
	Lifetime time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// NeedLeaderElection: every agent serves its own node.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Start requests a certificate, hands it to the sink, and renews it at
// pki.RenewAt until ctx ends; a failed request is retried with backoff while
// the current certificate (if any) stays in use.
func (r *Rotator) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("servingcert").WithValues("node", r.NodeName)
	retry := minRetry
	for {
		var wait time.Duration
		leaf, err := r.renew(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			logger.Error(err, "could not get a flow API serving certificate; retrying", "retryIn", retry)
			wait, retry = retry, min(2*retry, maxRetry)
		} else {
			retry = minRetry
			renewAt := pki.RenewAt(leaf.NotBefore, leaf.NotAfter)
			wait = renewAt.Sub(r.now())
			logger.Info("flow API serving certificate issued", "serial", leaf.SerialNumber.String(), "notAfter", leaf.NotAfter, "renewAt", renewAt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// renew makes a new key, has it certified and hands both to the sink.
func (r *Rotator) renew(ctx context.Context) (*x509.Certificate, error) {
	node := &corev1.Node{}
	if err := r.Nodes.Get(ctx, client.ObjectKey{Name: r.NodeName}, node); err != nil {
		return nil, fmt.Errorf("get node %s: %w", r.NodeName, err)
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	req := pki.Request{CommonName: pki.AgentCommonNamePrefix + r.NodeName, DNSNames: []string{r.NodeName}, IPs: pki.NodeIPs(node)}
	lifetime := r.Lifetime
	if lifetime == 0 {
		lifetime = pki.DefaultServingLifetime
	}
	issued, err := pki.RequestCertificate(ctx, r.CSRs, "palisade-agent-"+r.NodeName+"-", pki.SignerAgentServing, key, req, lifetime)
	if err != nil {
		return nil, err
	}
	chain := make([][]byte, 0, len(issued.Chain))
	for _, c := range issued.Chain {
		if c.IsCA {
			continue // the client has the CA; sending it would only cost bytes
		}
		chain = append(chain, c.Raw)
	}
	pool := x509.NewCertPool()
	pool.AddCert(issued.CA())
	r.Sink.Set(tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: issued.Leaf()}, pool)
	return issued.Leaf(), nil
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
