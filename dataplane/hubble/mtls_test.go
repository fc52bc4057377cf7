package hubble

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"testing"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/palisade-dev/palisade/internal/pki"
	"github.com/palisade-dev/palisade/internal/pki/pkitest"
)

// issue returns a certificate of ca for cn with the given usage, valid from
// now for life; serving certificates are for node-a and 127.0.0.1.
func issue(t *testing.T, ca *pki.CA, cn string, usage x509.ExtKeyUsage, now time.Time, life time.Duration) tls.Certificate {
	t.Helper()
	req := pki.Request{CommonName: cn}
	if usage == x509.ExtKeyUsageServerAuth {
		req.DNSNames, req.IPs = []string{"node-a"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	return pkitest.Issue(t, ca, req, usage, now, life)
}

func newCA(t *testing.T, name string) *pki.CA { return pkitest.NewCA(t, name) }

// clientCreds are a flow reader's: trust ca for the agent, present cert
// (none when nil).
func clientCreds(ca *pki.CA, cert *tls.Certificate) credentials.TransportCredentials {
	c := &tls.Config{RootCAs: ca.Pool(), ServerName: "node-a", MinVersion: tls.VersionTLS13}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return credentials.NewTLS(c)
}

// call makes one ServerStatus call at addr with creds.
func call(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = observerpb.NewObserverClient(conn).ServerStatus(ctx, &observerpb.ServerStatusRequest{})
	return err
}

// TestServeMutualTLS: the mutual-TLS listener serves flows to a client
// certificate of its CA only.
func TestServeMutualTLS(t *testing.T) {
	now := time.Now()
	ca, other := newCA(t, "palisade-ca"), newCA(t, "someone-elses-ca")
	m := &MutualTLS{}
	m.Set(issue(t, ca, "palisade-agent:node-a", x509.ExtKeyUsageServerAuth, now, time.Hour), ca.Pool())
	alice := issue(t, ca, "alice", x509.ExtKeyUsageClientAuth, now, time.Hour)
	s := serve(t, filledBuffer(0), ServerOptions{NodeName: "node-a", MutualTLS: m}, clientCreds(ca, &alice))

	got, err := collect(t, s.client, &observerpb.GetFlowsRequest{Number: 2})
	if err != nil {
		t.Fatalf("GetFlows with a Palisade client certificate: %v", err)
	}
	if want := fixtureNames(webToV6Dropped, apiPingLedger); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	otherAlice := issue(t, other, "alice", x509.ExtKeyUsageClientAuth, now, time.Hour)
	expired := issue(t, ca, "alice", x509.ExtKeyUsageClientAuth, now.Add(-2*time.Hour), time.Hour)
	// Another agent's serving certificate, from the same CA, is not a
	// client certificate.
	agentB := issue(t, ca, "palisade-agent:node-b", x509.ExtKeyUsageServerAuth, now, time.Hour)
	refused := map[string]credentials.TransportCredentials{
		"plaintext":                     insecure.NewCredentials(),
		"no client certificate":         clientCreds(ca, nil),
		"certificate of another CA":     clientCreds(ca, &otherAlice),
		"expired certificate":           clientCreds(ca, &expired),
		"serving certificate as client": clientCreds(ca, &agentB),
	}
	for name, creds := range refused {
		t.Run("refused: "+name, func(t *testing.T) {
			if err := call(t, s.addr, creds); err == nil {
				t.Fatal("served")
			}
		})
	}
}

// TestMutualTLSBeforeFirstCertificate: until the agent has its certificate
// every handshake fails; from then on clients are served.
func TestMutualTLSBeforeFirstCertificate(t *testing.T) {
	ca := newCA(t, "palisade-ca")
	m := &MutualTLS{}
	alice := issue(t, ca, "alice", x509.ExtKeyUsageClientAuth, time.Now(), time.Hour)
	s := serve(t, NewBuffer(0), ServerOptions{MutualTLS: m}, clientCreds(ca, &alice))
	if err := call(t, s.addr, clientCreds(ca, &alice)); err == nil {
		t.Fatal("served before any serving certificate")
	}
	m.Set(issue(t, ca, "palisade-agent:node-a", x509.ExtKeyUsageServerAuth, time.Now(), time.Hour), ca.Pool())
	if err := call(t, s.addr, clientCreds(ca, &alice)); err != nil {
		t.Fatalf("after the certificate: %v", err)
	}
}

// TestMutualTLSRotationKeepsFollowStreams: replacing the serving
// certificate, or the CA with it, while a follow stream is open loses no flow
// and no stream; new connections get the new certificate.
func TestMutualTLSRotationKeepsFollowStreams(t *testing.T) {
	now := time.Now()
	ca := newCA(t, "palisade-ca")
	m := &MutualTLS{}
	first := issue(t, ca, "palisade-agent:node-a", x509.ExtKeyUsageServerAuth, now, time.Hour)
	m.Set(first, ca.Pool())
	alice := issue(t, ca, "alice", x509.ExtKeyUsageClientAuth, now, time.Hour)
	b := NewBuffer(0)
	s := serve(t, b, ServerOptions{NodeName: "node-a", MutualTLS: m}, clientCreds(ca, &alice))

	ch := follow(t, s.client, &observerpb.GetFlowsRequest{Follow: true})
	waitFollowers(t, b, 1)
	b.Observe(&fixtures[0].flow)
	if got := nameOf(recvWithin(t, ch, 10*time.Second).GetFlow()); got != fixtures[0].name {
		t.Fatalf("first flow %s", got)
	}

	second := issue(t, ca, "palisade-agent:node-a", x509.ExtKeyUsageServerAuth, now, time.Hour)
	m.Set(second, ca.Pool())
	if got := servedLeaf(t, s.addr, ca, alice); !got.Equal(second.Leaf) {
		t.Errorf("a new connection got certificate %s, want the renewed %s", got.SerialNumber, second.Leaf.SerialNumber)
	}
	// A new CA: the open stream keeps its session; new connections need the
	// new CA's certificates.
	ca2 := newCA(t, "palisade-ca-2")
	m.Set(issue(t, ca2, "palisade-agent:node-a", x509.ExtKeyUsageServerAuth, now, time.Hour), ca2.Pool())
	if err := call(t, s.addr, clientCreds(ca, &alice)); err == nil {
		t.Error("a client of the old CA was served after the CA changed")
	}
	alice2 := issue(t, ca2, "alice", x509.ExtKeyUsageClientAuth, now, time.Hour)
	if err := call(t, s.addr, clientCreds(ca2, &alice2)); err != nil {
		t.Errorf("a client of the new CA: %v", err)
	}

	for i := 1; i < len(fixtures); i++ {
		b.Observe(&fixtures[i].flow)
	}
	for i := 1; i < len(fixtures); i++ {
		r := recvWithin(t, ch, 10*time.Second)
		if r.GetLostEvents() != nil {
			t.Fatalf("lost flows across rotation: %v", r.GetLostEvents())
		}
		if got := nameOf(r.GetFlow()); got != fixtures[i].name {
			t.Errorf("followed %s, want %s", got, fixtures[i].name)
		}
	}
	if b.Followers() != 1 {
		t.Errorf("%d followers, want the one stream still open", b.Followers())
	}
}

// servedLeaf returns the certificate the server presents to a new TLS
// connection.
func servedLeaf(t *testing.T, addr string, ca *pki.CA, client tls.Certificate) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "node-a", Certificates: []tls.Certificate{client},
		NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestFollowStreamEndsWithClientCertificate: a follow stream opened with a
// client certificate ends when that certificate expires.
func TestFollowStreamEndsWithClientCertificate(t *testing.T) {
	ca := newCA(t, "palisade-ca")
	m := &MutualTLS{}
	m.Set(issue(t, ca, "palisade-agent:node-a", x509.ExtKeyUsageServerAuth, time.Now(), time.Hour), ca.Pool())
	shortLived := issue(t, ca, "alice", x509.ExtKeyUsageClientAuth, time.Now(), 2*time.Second)
	b := NewBuffer(0)
	s := serve(t, b, ServerOptions{MutualTLS: m}, clientCreds(ca, &shortLived))
	ch := follow(t, s.client, &observerpb.GetFlowsRequest{Follow: true})
	waitFollowers(t, b, 1)
	b.Observe(&fixtures[0].flow)
	recvWithin(t, ch, 10*time.Second)
	expectEnd(t, b, ch, "after the client certificate expired")
	if left := time.Until(shortLived.Leaf.NotAfter); left > 0 {
		t.Errorf("stream ended %s before the certificate expired", left)
	}
}
