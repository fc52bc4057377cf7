package hubble

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"
)

// MutualTLS is the credentials of a mutual-TLS listener: the serving
// certificate and the CA whose client certificates it accepts. Set replaces
// them while the server runs: each new handshake uses the latest, and
// connections already open (with their follow streams) keep theirs, since a
// TLS session never re-reads its certificate.
type MutualTLS struct {
	current atomic.Pointer[tls.Config]
}

// Set makes cert the serving certificate and clientCAs the only issuers of
// client certificates accepted from now on.
func (m *MutualTLS) Set(cert tls.Certificate, clientCAs *x509.CertPool) {
	m.current.Store(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    clientCAs,
		// A certificate the pool's CA issued, valid now, for client
		// authentication (crypto/tls checks ExtKeyUsageClientAuth): an
		// agent's own serving certificate, from the same CA, is refused.
		ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS13,
		// gRPC clients require ALPN h2 (grpc-go since 1.67); the config
		// returned per handshake replaces the one credentials.NewTLS set it on.
		NextProtos: []string{"h2"},
	})
}

// errNoCertificate fails handshakes until the first certificate is issued.
var errNoCertificate = errors.New("no serving certificate issued yet")

// serverConfig is the tls.Config the server is given: it defers every
// handshake to the credentials current at the time.
func (m *MutualTLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := m.current.Load()
			if c == nil {
				return nil, errNoCertificate
			}
			return c, nil
		},
	}
}

// endStreamsAtCertificateExpiry ends a stream when the client certificate it
// was opened with expires: the handshake checked it once, and a follow
// stream would otherwise outlive it (and the RBAC that got it issued) for
// as long as the connection lasts. Without a client certificate (plaintext
// on loopback) streams are left alone.
func endStreamsAtCertificateExpiry(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	p, ok := grpcpeer.FromContext(ss.Context())
	if !ok {
		return handler(srv, ss)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return handler(srv, ss)
	}
	ctx, cancel := context.WithDeadline(ss.Context(), info.State.PeerCertificates[0].NotAfter)
	defer cancel()
	return handler(srv, &streamWithContext{ServerStream: ss, ctx: ctx})
}
