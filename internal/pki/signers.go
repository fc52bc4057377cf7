package pki

import (
	"crypto/x509"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Signer names of the CertificateSigningRequests Palisade's controller
// approves and signs; it leaves every other signer alone.
const (
	// SignerAgentServing issues an agent the serving certificate of the flow
	// API's mutual-TLS listener, for its node's name and addresses.
	SignerAgentServing = "palisade.dev/agent-serving"
	// SignerFlowsClient issues a person or a tool a short-lived client
	// certificate that agents accept on the flow API's mutual-TLS listener.
	SignerFlowsClient = "palisade.dev/flows-client"
)

// Lifetimes: the longest each signer issues (a request's
// spec.expirationSeconds may ask for less) and the shortest, below which a
// certificate would expire before its holder could use it.
const (
	MaxServingLifetime = 7 * 24 * time.Hour
	MaxClientLifetime  = time.Hour
	MinLifetime        = 10 * time.Minute
	// DefaultServingLifetime is what an agent asks for; it renews at
	// two-thirds of it (RenewAt), so a controller outage shorter than a day
	// never lets a serving certificate expire.
	DefaultServingLifetime = 3 * 24 * time.Hour
)

// AgentCommonNamePrefix starts the subject common name of an agent's serving
// certificate; the node name follows.
const AgentCommonNamePrefix = "palisade-agent:"

// ExtKeyUsage is what a certificate of signer may be used for.
func ExtKeyUsage(signer string) []x509.ExtKeyUsage {
	switch signer {
	case SignerAgentServing:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case SignerFlowsClient:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return nil
}

// MaxLifetime is the longest certificate signer issues.
func MaxLifetime(signer string) time.Duration {
	if signer == SignerFlowsClient {
		return MaxClientLifetime
	}
	return MaxServingLifetime
}

// RenewAt is when a certificate valid from notBefore to notAfter should be
// replaced: after two-thirds of its life, as the kubelet does for its own
// (k8s.io/client-go/util/certificate, nextRotationDeadline, 70-90 %), leaving
// a third for the controller to be down or slow.
func RenewAt(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) * 2 / 3)
}

// NodeIPs are the node's internal and external IPs: the addresses an agent's
// serving certificate may name.
func NodeIPs(node *corev1.Node) []net.IP {
	var out []net.IP
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip := net.ParseIP(a.Address); ip != nil {
			out = append(out, ip)
		}
	}
	return out
}
