package securemetrics_test

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/yaml"

	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/securemetrics"
	"github.com/palisade-dev/palisade/internal/testenv"
)

func TestInsecureIsPlainHTTP(t *testing.T) {
	f := securemetrics.Flags{Secure: false}
	if o := f.Options("127.0.0.1:9000"); o.SecureServing || o.FilterProvider != nil || o.BindAddress != "127.0.0.1:9000" {
		t.Errorf("--metrics-secure=false: %+v", o)
	}
	f.Secure = true
	if o := f.Options(":8443"); !o.SecureServing || o.FilterProvider == nil {
		t.Errorf("--metrics-secure: %+v", o)
	}
}

// TestMetricsNeedAuthorizedToken serves the metrics endpoint as the binaries
// do (default flags) against a real API server and checks who gets in: only
// a service account bound to config/rbac's palisade-metrics-reader.
func TestMetricsNeedAuthorizedToken(t *testing.T) {
	cfg := testenv.Start(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	addr := startSecureMetrics(t, cfg)
	bindReaderRole(t, cs, "scraper", "nosy")
	token := func(sa string) string { return serviceAccountToken(t, cs, sa) }
	get := metricsGetter(ctx, addr)
	waitServing(t, get)

	// Every request but the authorized one is refused and gets no metrics.
	cases := []struct {
		name   string
		scheme string
		token  string
		want   []int // accepted status codes; none: the connection fails
	}{
		{"anonymous", "https", "", []int{http.StatusUnauthorized}},
		// The API server's TokenReview reports an error for a token that is
		// not a JWT; controller-runtime's filter answers that with 500.
		{"forged token", "https", "not-a-token", []int{http.StatusUnauthorized, http.StatusInternalServerError}},
		{"authenticated, not authorized", "https", token("nosy"), []int{http.StatusForbidden}},
		{"bound to palisade-metrics-reader", "https", token("scraper"), []int{http.StatusOK}},
		// The listener speaks only TLS: plain HTTP fails the handshake.
		{"plain http", "http", token("scraper"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, err := get(c.scheme, c.token)
			if c.want == nil {
				if err == nil && code == http.StatusOK {
					t.Fatalf("served over plain HTTP: %.200s", body)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(c.want, code) {
				t.Fatalf("status %d, want one of %v: %.200s", code, c.want, body)
			}
			served := strings.Contains(body, "# HELP")
			if served != (code == http.StatusOK) {
				t.Errorf("status %d, metrics served: %v: %.200s", code, served, body)
			}
		})
	}
}

// startSecureMetrics runs a manager whose metrics endpoint has the
// binaries' default flags, and returns the endpoint's address.
func startSecureMetrics(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	var flags securemetrics.Flags
	fs := newFlagSet()
	flags.Bind(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if !flags.Secure {
		t.Fatal("--metrics-secure must default to true")
	}
	addr := freeAddr(t)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Metrics: flags.Options(addr), HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return addr
}

// bindReaderRole creates the reader role as shipped and the service
// accounts of default, and binds the role to the first of them only.
func bindReaderRole(t *testing.T, cs kubernetes.Interface, bound string, others ...string) {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join(kubeassets.RepoRoot(), "config", "rbac", "metrics_reader_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, sa := range append([]string{bound}, others...) {
		if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: bound + "-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: bound, Namespace: "default"}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func serviceAccountToken(t *testing.T, cs kubernetes.Interface, sa string) string {
	t.Helper()
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", sa, err)
	}
	return tr.Status.Token
}

// metricsGetter returns a GET of addr's /metrics over scheme with an
// optional bearer token: its status and body.
func metricsGetter(ctx context.Context, addr string) func(scheme, bearer string) (int, string, error) {
	// The certificate is self-signed: the test checks access control, not
	// the server's identity.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test server
	return func(scheme, bearer string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
}

// waitServing waits for the endpoint to answer HTTPS at all.
func waitServing(t *testing.T, get func(scheme, bearer string) (int, string, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := get("https", ""); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("metrics endpoint never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
}

func newFlagSet() *flag.FlagSet { return flag.NewFlagSet("test", flag.ContinueOnError) }
