package certificates

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-dev/palisade/internal/pki"
)

// ExtraNodeName is the user-info extra the API server puts in a pod-bound
// service account token's identity (KEP-4193, ServiceAccountTokenPodNodeInfo,
// GA in 1.32): the node the requesting pod runs on. The CSR admission copies
// the requester's extras into spec.extra, so it says which node an agent's
// request comes from, and no pod elsewhere can claim another node's.
const ExtraNodeName = "authentication.kubernetes.io/node-name"

// allowed key usages of each signer's requests: nothing a certificate of
// the other signer could be used for.
var (
	servingUsages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth}
	clientUsages  = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}
)

// checkAgentServing tells why an agent-serving request must not be signed,
// or nil: it must come from the agent's service account, from a pod bound to
// a node, and ask for exactly that node's name and some of its addresses,
// for serving only. node is the Node the request's extra names (nil: none).
func checkAgentServing(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest, agentUser string, node *corev1.Node) error {
	if csr.Spec.Username != agentUser {
		return fmt.Errorf("requested by %q, not the agent's service account %q", csr.Spec.Username, agentUser)
	}
	nodeName, err := requestingNode(csr)
	if err != nil {
		return err
	}
	if node == nil || node.Name != nodeName {
		return fmt.Errorf("node %q does not exist", nodeName)
	}
	if err := usagesWithin(csr.Spec.Usages, servingUsages, certificatesv1.UsageServerAuth); err != nil {
		return err
	}
	if want := pki.AgentCommonNamePrefix + nodeName; req.Subject.CommonName != want {
		return fmt.Errorf("common name %q, want %q", req.Subject.CommonName, want)
	}
	if len(req.Subject.Organization) > 0 || len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return errors.New("asks for organizations, e-mail addresses or URIs")
	}
	if !slices.Equal(req.DNSNames, []string{nodeName}) {
		return fmt.Errorf("DNS names %v, want [%s]", req.DNSNames, nodeName)
	}
	addrs := pki.NodeIPs(node)
	for _, ip := range req.IPAddresses {
		if !slices.ContainsFunc(addrs, ip.Equal) {
			return fmt.Errorf("address %s is not one of node %s's %v", ip, nodeName, addrs)
		}
	}
	return nil
}

// requestingNode is the node named in the request's extra.
func requestingNode(csr *certificatesv1.CertificateSigningRequest) (string, error) {
	v := csr.Spec.Extra[ExtraNodeName]
	if len(v) != 1 || v[0] == "" {
		return "", fmt.Errorf("the requester's credentials name no node (%s): not a pod-bound service account token", ExtraNodeName)
	}
	return v[0], nil
}

// checkFlowsClientRequest tells why a flows-client request must not be
// signed, or nil, before authorization: the certificate names its requester
// and nothing else, and is for client authentication only.
func checkFlowsClientRequest(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest) error {
	if err := usagesWithin(csr.Spec.Usages, clientUsages, certificatesv1.UsageClientAuth); err != nil {
		return err
	}
	if req.Subject.CommonName != csr.Spec.Username {
		return fmt.Errorf("common name %q, want the requester's name %q", req.Subject.CommonName, csr.Spec.Username)
	}
	// Organizations would read as groups to anything that maps client
	// certificates to Kubernetes users.
	if len(req.Subject.Organization) > 0 || len(req.DNSNames) > 0 || len(req.IPAddresses) > 0 || len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return errors.New("asks for organizations, names, addresses or URIs: a flows client certificate names its requester only")
	}
	return nil
}

// usagesWithin checks that every usage is allowed and required is among them.
func usagesWithin(usages, allowed []certificatesv1.KeyUsage, required certificatesv1.KeyUsage) error {
	for _, u := range usages {
		if !slices.Contains(allowed, u) {
			return fmt.Errorf("usage %q is not allowed (allowed: %v)", u, allowed)
		}
	}
	if !slices.Contains(usages, required) {
		return fmt.Errorf("usages %v lack %q", usages, required)
	}
	return nil
}
