package certificates_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/palisade-dev/palisade/controllers/certificates"
	"github.com/palisade-dev/palisade/controllers/certificates/signertest"
	"github.com/palisade-dev/palisade/internal/pki"
	"github.com/palisade-dev/palisade/internal/testenv"
)

const (
	agentUser = signertest.AgentUser
	// waitIssued bounds each request: the signer answers in milliseconds.
	waitIssued = 30 * time.Second
)

// requester is who sends a request: a user name, and the node the API
// server would record from a pod-bound token ("" for none).
type requester struct {
	user string
	node string
}

// TestSigner runs the signer against a real API server, with requests made
// as the requester (impersonation records the user and extras in the request
// as a real token would), and checks who gets which certificate.
func TestSigner(t *testing.T) {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	cfg := testenv.Start(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	setUp(t, admin)
	signertest.Start(t, cfg)

	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	serving := func(node string, ips ...string) pki.Request {
		r := pki.Request{CommonName: pki.AgentCommonNamePrefix + node, DNSNames: []string{node}}
		for _, ip := range ips {
			r.IPs = append(r.IPs, net.ParseIP(ip))
		}
		return r
	}
	request := func(t *testing.T, who requester, signer string, r pki.Request, lifetime time.Duration) (*pki.Issued, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, waitIssued)
		defer cancel()
		cs := kubernetes.NewForConfigOrDie(impersonate(cfg, who))
		return pki.RequestCertificate(ctx, cs.CertificatesV1().CertificateSigningRequests(), "test-", signer, key, r, lifetime)
	}

	var ca *x509.Certificate
	t.Run("agent gets its node's serving certificate", func(t *testing.T) {
		got, err := request(t, requester{agentUser, "node-a"}, pki.SignerAgentServing, serving("node-a", "10.0.0.1"), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ca = got.CA()
		leaf := got.Leaf()
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "node-a", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for node-a: %v", err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "10.0.0.1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for 10.0.0.1: %v", err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			t.Error("a serving certificate authenticates clients too")
		}
		if life := leaf.NotAfter.Sub(time.Now()); life > time.Hour || life < 50*time.Minute {
			t.Errorf("valid for %s more, asked for 1h", life)
		}
	})

	refused := []struct {
		name   string
		who    requester
		signer string
		req    pki.Request
		reason string // part of the refusal message
	}{
		{"another node's name", requester{agentUser, "node-a"}, pki.SignerAgentServing, serving("node-b"), `want "palisade-agent:node-a"`},
		{"another node's address", requester{agentUser, "node-a"}, pki.SignerAgentServing, serving("node-a", "10.0.0.2"), "10.0.0.2 is not one of node node-a"},
		{"another service account", requester{"system:serviceaccount:default:nosy", "node-a"}, pki.SignerAgentServing, serving("node-a"), "not the agent's service account"},
		{"a token bound to no node", requester{agentUser, ""}, pki.SignerAgentServing, serving("node-a"), "name no node"},
		{"a node that does not exist", requester{agentUser, "node-z"}, pki.SignerAgentServing, serving("node-z"), `node "node-z" does not exist`},
		{"flows without RBAC", requester{"bob", ""}, pki.SignerFlowsClient, pki.Request{CommonName: "bob"}, `"bob" may not get flows.palisade.dev`},
		{"flows for someone else", requester{"alice", ""}, pki.SignerFlowsClient, pki.Request{CommonName: "admin"}, `want the requester's name "alice"`},
		{"flows with groups", requester{"alice", ""}, pki.SignerFlowsClient, pki.Request{CommonName: "alice", Organizations: []string{"system:masters"}}, "names its requester only"},
		{"flows as a serving certificate", requester{"alice", ""}, pki.SignerFlowsClient, pki.Request{CommonName: "alice", DNSNames: []string{"node-a"}}, "names its requester only"},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			_, err := request(t, c.who, c.signer, c.req, time.Hour)
			if !errors.Is(err, pki.ErrRefused) || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("got %v, want a refusal saying %q", err, c.reason)
			}
		})
	}

	t.Run("reader of flows gets a short-lived client certificate", func(t *testing.T) {
		got, err := request(t, requester{"alice", ""}, pki.SignerFlowsClient, pki.Request{CommonName: "alice"}, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		leaf := got.Leaf()
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("verify as a client of the agents' CA: %v", err)
		}
		if life := time.Until(leaf.NotAfter); life > pki.MaxClientLifetime {
			t.Errorf("valid for %s more, want at most %s", life, pki.MaxClientLifetime)
		}
	})

	t.Run("approval by someone else does not bypass the checks", func(t *testing.T) {
		// An administrator approves a request for another node before the
		// signer looked at it: the signer still refuses to sign it.
		reqPEM, err := pki.NewRequestPEM(key, serving("node-b"))
		if err != nil {
			t.Fatal(err)
		}
		cs := kubernetes.NewForConfigOrDie(impersonate(cfg, requester{agentUser, "node-a"}))
		csr, err := cs.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "approved-elsewhere"},
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: reqPEM, SignerName: pki.SignerAgentServing,
				Usages: []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Admin"})
		if _, err := admin.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
			t.Logf("approve: %v (the signer got there first)", err)
		}
		got := waitDecided(t, admin, csr.Name)
		if len(got.Status.Certificate) > 0 {
			t.Fatalf("signed a certificate for node-b requested from node-a")
		}
	})

	t.Run("other signers are left alone", func(t *testing.T) {
		reqPEM, err := pki.NewRequestPEM(key, serving("node-a"))
		if err != nil {
			t.Fatal(err)
		}
		csrs := admin.CertificatesV1().CertificateSigningRequests()
		if _, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "someone-elses"},
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: reqPEM, SignerName: "example.com/serving",
				Usages: []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// A request of ours made afterwards being decided shows the signer
		// has seen the foreign one (one worker, events in order).
		if _, err := request(t, requester{"bob", ""}, pki.SignerFlowsClient, pki.Request{CommonName: "bob"}, time.Hour); !errors.Is(err, pki.ErrRefused) {
			t.Fatalf("bob: %v", err)
		}
		got, err := csrs.Get(ctx, "someone-elses", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Conditions) > 0 || len(got.Status.Certificate) > 0 {
			t.Errorf("the signer touched another signer's request: %+v", got.Status)
		}
	})

	t.Run("the CA is kept in its Secret", func(t *testing.T) {
		s, err := admin.CoreV1().Secrets("palisade-system").Get(ctx, certificates.DefaultCASecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := pki.LoadCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
		if err != nil {
			t.Fatal(err)
		}
		if !stored.Cert.Equal(ca) {
			t.Error("the issuing CA is not the one in the Secret")
		}
	})
}

// setUp makes the nodes, lets every authenticated user create and read back
// certificate requests (as clusters commonly allow), and lets alice read
// flows.
func setUp(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "palisade-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, ip := range map[string]string{"node-a": "10.0.0.1", "node-b": "10.0.0.2"} {
		n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	roles := []*rbacv1.ClusterRole{
		{ObjectMeta: metav1.ObjectMeta{Name: "csr-requester"}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "flows-reader"}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{certificates.FlowsAccess.Group}, Resources: []string{certificates.FlowsAccess.Resource}, Verbs: []string{certificates.FlowsAccess.Verb}}}},
	}
	bindings := []*rbacv1.ClusterRoleBinding{
		{ObjectMeta: metav1.ObjectMeta{Name: "csr-requester"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "csr-requester"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:authenticated"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "flows-reader"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "flows-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}}},
	}
	for _, r := range roles {
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bindings {
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// impersonate returns cfg acting as who, with the node extra a pod-bound
// service account token carries.
func impersonate(cfg *rest.Config, who requester) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: who.user, Groups: []string{"system:authenticated"}}
	if strings.HasPrefix(who.user, "system:serviceaccount:") {
		c.Impersonate.Groups = append(c.Impersonate.Groups, "system:serviceaccounts")
	}
	if who.node != "" {
		c.Impersonate.Extra = map[string][]string{certificates.ExtraNodeName: {who.node}}
	}
	return c
}

// waitDecided waits until the request is issued, denied or failed.
func waitDecided(t *testing.T, cs kubernetes.Interface, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	deadline := time.Now().Add(waitIssued)
	for time.Now().Before(deadline) {
		got, err := cs.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got.Status.Conditions {
			if c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
				return got
			}
		}
		if len(got.Status.Certificate) > 0 {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("request %s not decided within %s", name, waitIssued)
	return nil
}
