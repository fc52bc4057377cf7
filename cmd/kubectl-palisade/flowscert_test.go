package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/controllers/certificates"
	"github.com/palisade-dev/palisade/controllers/certificates/signertest"
	"github.com/palisade-dev/palisade/dataplane/agent/servingcert"
	"github.com/palisade-dev/palisade/dataplane/flows"
	"github.com/palisade-dev/palisade/dataplane/hubble"
	"github.com/palisade-dev/palisade/internal/pki"
	"github.com/palisade-dev/palisade/internal/testenv"
)

const agentUser = signertest.AgentUser

// TestFlowsOverMutualTLS runs the whole chain against a real API server,
// without a kernel: the controller's signer, an agent (as its service
// account, on node-a) that gets its serving certificate and serves flows
// over mutual TLS, and flows-cert, whose files let the admin read them and
// which a user without RBAC cannot get.
func TestFlowsOverMutualTLS(t *testing.T) {
	cfg := testenv.Start(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setUpCluster(t, admin)
	signertest.Start(t, cfg)

	// The agent of node-a, whose address is 127.0.0.1 here.
	agentCfg := rest.CopyConfig(cfg)
	agentCfg.Impersonate = rest.ImpersonationConfig{UserName: agentUser, Groups: []string{"system:serviceaccounts", "system:authenticated"},
		Extra: map[string][]string{certificates.ExtraNodeName: {"node-a"}}}
	agentCS := kubernetes.NewForConfigOrDie(agentCfg)
	reader, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	creds := &hubble.MutualTLS{}
	rot := &servingcert.Rotator{CSRs: agentCS.CertificatesV1().CertificateSigningRequests(), Nodes: reader, NodeName: "node-a", Sink: creds}
	go func() { _ = rot.Start(ctx) }()
	buf := hubble.NewBuffer(0)
	buf.Observe(&flows.Flow{
		Time: time.Now(), Node: "node-a", Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictDropped, Protocol: 6,
		Source:      flows.Endpoint{IP: netip.MustParseAddr("10.244.1.5"), Namespace: "shop", Pod: "web"},
		Destination: flows.Endpoint{IP: netip.MustParseAddr("10.244.1.9"), Namespace: "shop", Pod: "api"}, DestinationPort: 8080,
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = hubble.NewServer(buf, hubble.ServerOptions{NodeName: "node-a", MutualTLS: creds}).Serve(ctx, lis)
	}()

	dir := t.TempDir()
	files, err := requestFlowsCert(ctx, admin, dir, time.Hour)
	if err != nil {
		t.Fatalf("flows-cert as the admin: %v", err)
	}
	if st, err := os.Stat(files.Key); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v", st.Mode(), err)
	}
	// As `hubble observe --tls --tls-ca-cert-files ... --tls-client-cert-file
	// ... --tls-client-key-file ...` would, by the node's address.
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The agent may still be waiting for its certificate: retry until it
	// serves (each try is a new handshake).
	var got []*observerpb.GetFlowsResponse
	for {
		got, err = getFlows(ctx, observerpb.NewObserverClient(conn))
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || len(got) != 1 || got[0].GetFlow().GetDestination().GetPodName() != "api" {
		t.Fatalf("GetFlows with flows-cert's files: %v, %v", got, err)
	}

	bob := rest.CopyConfig(cfg)
	bob.Impersonate = rest.ImpersonationConfig{UserName: "bob", Groups: []string{"system:authenticated"}}
	if _, err := requestFlowsCert(ctx, kubernetes.NewForConfigOrDie(bob), t.TempDir(), time.Hour); !errors.Is(err, pki.ErrRefused) {
		t.Errorf("flows-cert as bob, who may not read flows: %v, want a refusal", err)
	}
}

func getFlows(ctx context.Context, c observerpb.ObserverClient) ([]*observerpb.GetFlowsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stream, err := c.GetFlows(ctx, &observerpb.GetFlowsRequest{})
	if err != nil {
		return nil, err
	}
	var out []*observerpb.GetFlowsResponse
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
}

// setUpCluster makes palisade-system, node-a at 127.0.0.1, and lets every
// authenticated user create and read back certificate requests (the agent's
// ClusterRole and palisade-flows-reader grant that much; bob has no
// flows.palisade.dev).
func setUpCluster(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "palisade-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "csr-requester"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "csr-requester"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "csr-requester"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:authenticated"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
