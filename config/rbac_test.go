// Package config_test checks the shipped manifests against a real API server.
package config_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const namespace = "palisade-system"

// serviceAccount is one of Palisade's identities and the kustomization that
// ships its RBAC.
type serviceAccount struct {
	name string
	kdir string
}

var accounts = []serviceAccount{
	{name: "palisade-controller", kdir: "rbac"},
	{name: "palisade-agent", kdir: "agent"},
}

// TestRBACLeastPrivilege applies the shipped RBAC (kubectl kustomize of
// config/rbac and config/agent) to a real API server, which authorizes with
// RBAC, and compares what each service account may do (`kubectl auth can-i
// --list`) with a golden file; then asserts the rules that must hold
// whatever the golden file says.
func TestRBACLeastPrivilege(t *testing.T) {
	cfg := testenv.Start(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	kubeconfig := writeKubeconfig(t, cfg)

	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var roles []rbacRules
	for _, sa := range accounts {
		for _, obj := range kustomize(t, sa.kdir) {
			switch obj.GetKind() {
			case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			default:
				continue // the workloads are not under test here
			}
			if err := c.Create(ctx, obj); err != nil {
				t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
			}
			if k := obj.GetKind(); k == "ClusterRole" || k == "Role" {
				roles = append(roles, rulesOf(t, obj))
			}
		}
	}

	t.Run("golden can-i --list", func(t *testing.T) {
		for _, sa := range accounts {
			out := kubectl(t, kubeconfig, "auth", "can-i", "--list", "--namespace", namespace, "--as", user(sa.name))
			checkGolden(t, filepath.Join("testdata", "rbac", sa.name+".txt"), out)
		}
	})

	t.Run("no wildcard", func(t *testing.T) {
		for _, r := range roles {
			for _, rule := range r.rules {
				for _, s := range slices.Concat(rule.Verbs, rule.APIGroups, rule.Resources, rule.NonResourceURLs) {
					if strings.Contains(s, "*") {
						t.Errorf("%s has a wildcard rule: %+v", r.name, rule)
					}
				}
			}
		}
	})

	t.Run("agent reads only what it enforces", func(t *testing.T) {
		// What it enforces, and what the intent resolver reads for the
		// Audit-mode intents the agent compiles itself.
		readable := map[string]bool{"/pods": true, "/namespaces": true, "networking.k8s.io/networkpolicies": true, "palisade.dev/serviceintents": true,
			"/services": true, "apps/deployments": true, "apps/statefulsets": true, "apps/daemonsets": true, "apps/replicasets": true,
			"batch/jobs": true, "batch/cronjobs": true}
		metricsAuth := map[string]bool{"authentication.k8s.io/tokenreviews": true, "authorization.k8s.io/subjectaccessreviews": true}
		// Its own report, and its Node (owner of the report), by name only.
		// And the certificate requests of its flow API serving certificate,
		// read back by name, not listed.
		written := map[string][]string{"palisade.dev/nodeflowreports": {"create", "get", "patch", "update"}, "/nodes": {"get"},
			"certificates.k8s.io/certificatesigningrequests": {"create", "get"}}
		for _, r := range roles {
			if r.name != "palisade-agent" {
				continue
			}
			for _, rule := range r.rules {
				for _, g := range rule.APIGroups {
					for _, res := range rule.Resources {
						key := g + "/" + res
						switch {
						case readable[key]:
							if extra := slices.DeleteFunc(slices.Clone(rule.Verbs), func(v string) bool { return v == "get" || v == "list" || v == "watch" }); len(extra) > 0 {
								t.Errorf("agent may %v %s", extra, key)
							}
						case metricsAuth[key]:
							if !slices.Equal(rule.Verbs, []string{"create"}) {
								t.Errorf("agent may %v %s", rule.Verbs, key)
							}
						case written[key] != nil:
							if !slices.Equal(rule.Verbs, written[key]) {
								t.Errorf("agent may %v %s, want %v", rule.Verbs, key, written[key])
							}
						default:
							t.Errorf("agent may %v %s", rule.Verbs, key)
						}
					}
				}
				if len(rule.NonResourceURLs) > 0 {
					t.Errorf("agent has non-resource rule %+v", rule)
				}
			}
		}
	})

	// What the API server answers for each identity, whatever the roles say.
	checks := []struct {
		sa       string
		verb     string
		group    string
		resource string
		sub      string
		allowed  bool
	}{
		{"palisade-agent", "list", "", "pods", "", true},
		{"palisade-agent", "watch", "", "namespaces", "", true},
		{"palisade-agent", "watch", "networking.k8s.io", "networkpolicies", "", true},
		{"palisade-agent", "list", "palisade.dev", "serviceintents", "", true},
		{"palisade-agent", "create", "networking.k8s.io", "networkpolicies", "", false},
		{"palisade-agent", "update", "networking.k8s.io", "networkpolicies", "", false},
		{"palisade-agent", "patch", "networking.k8s.io", "networkpolicies", "", false},
		{"palisade-agent", "delete", "networking.k8s.io", "networkpolicies", "", false},
		{"palisade-agent", "get", "", "secrets", "", false},
		{"palisade-agent", "list", "", "secrets", "", false},
		{"palisade-agent", "update", "palisade.dev", "serviceintents", "", false},
		{"palisade-agent", "patch", "palisade.dev", "serviceintents", "status", false},
		{"palisade-agent", "update", "", "pods", "", false},
		{"palisade-agent", "create", "", "pods", "exec", false},
		{"palisade-agent", "patch", "palisade.dev", "nodeflowreports", "", true},
		{"palisade-agent", "delete", "palisade.dev", "nodeflowreports", "", false},
		{"palisade-agent", "get", "", "nodes", "", true},
		{"palisade-agent", "list", "", "nodes", "", false},
		{"palisade-agent", "update", "", "nodes", "", false},
		{"palisade-agent", "list", "", "services", "", true},
		{"palisade-agent", "watch", "batch", "cronjobs", "", true},
		{"palisade-controller", "get", "", "secrets", "", false},
		{"palisade-controller", "list", "", "secrets", "", false},
		{"palisade-controller", "watch", "", "secrets", "", false},
		{"palisade-controller", "create", "networking.k8s.io", "networkpolicies", "", true},
		{"palisade-controller", "patch", "palisade.dev", "serviceintents", "status", true},
		{"palisade-controller", "update", "", "pods", "", false},
		{"palisade-controller", "delete", "palisade.dev", "serviceintents", "", false},
		{"palisade-controller", "create", "rbac.authorization.k8s.io", "clusterrolebindings", "", false},
		{"palisade-controller", "update", "coordination.k8s.io", "leases", "", true},
		// The startup taint: the controller patches nodes, nothing more.
		{"palisade-controller", "patch", "", "nodes", "", true},
		{"palisade-controller", "update", "", "nodes", "", false},
		{"palisade-controller", "delete", "", "nodes", "", false},
		{"palisade-controller", "create", "", "nodes", "", false},
		{"palisade-controller", "patch", "", "nodes", "status", false},
		// Certificates: the agent requests its own and reads it back by
		// name; it neither lists requests nor approves or signs any.
		{"palisade-agent", "create", "certificates.k8s.io", "certificatesigningrequests", "", true},
		{"palisade-agent", "list", "certificates.k8s.io", "certificatesigningrequests", "", false},
		{"palisade-agent", "update", "certificates.k8s.io", "certificatesigningrequests", "approval", false},
		{"palisade-agent", "update", "certificates.k8s.io", "certificatesigningrequests", "status", false},
		// The controller decides requests (only its own signers', below) and
		// may create Secrets in its namespace (the CA's) but read none by
		// listing.
		{"palisade-controller", "watch", "certificates.k8s.io", "certificatesigningrequests", "", true},
		{"palisade-controller", "update", "certificates.k8s.io", "certificatesigningrequests", "approval", true},
		{"palisade-controller", "create", "certificates.k8s.io", "certificatesigningrequests", "", false},
		{"palisade-controller", "create", "", "secrets", "", true},
		{"palisade-controller", "update", "", "secrets", "", false},
		{"palisade-controller", "delete", "", "secrets", "", false},
		// An account with no binding at all: proves the server authorizes
		// with RBAC (not AlwaysAllow), so the denials above mean something.
		{"unbound", "list", "", "pods", "", false},
	}
	// Checks of one named object.
	named := []struct {
		sa, verb, group, resource, name string
		allowed                         bool
	}{
		{"palisade-controller", "get", "", "secrets", "palisade-ca", true},
		{"palisade-controller", "get", "", "secrets", "other", false},
		{"palisade-agent", "get", "", "secrets", "palisade-ca", false},
		// The controller approves and signs for Palisade's signers only:
		// never a kubelet's or an API client's certificate.
		{"palisade-controller", "approve", "certificates.k8s.io", "signers", "palisade.dev/agent-serving", true},
		{"palisade-controller", "sign", "certificates.k8s.io", "signers", "palisade.dev/flows-client", true},
		{"palisade-controller", "approve", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client", false},
		{"palisade-controller", "sign", "certificates.k8s.io", "signers", "kubernetes.io/kubelet-serving", false},
		{"palisade-agent", "approve", "certificates.k8s.io", "signers", "palisade.dev/agent-serving", false},
		{"palisade-agent", "sign", "certificates.k8s.io", "signers", "palisade.dev/agent-serving", false},
	}
	t.Run("explicit by name", func(t *testing.T) {
		for _, ch := range named {
			attrs := authorizationv1.ResourceAttributes{Namespace: namespace, Verb: ch.verb, Group: ch.group, Resource: ch.resource, Name: ch.name}
			if allowed, reason := mayDo(t, cs, ch.sa, attrs); allowed != ch.allowed {
				t.Errorf("%s %s %s.%s %q: allowed %v, want %v (%s)", ch.sa, ch.verb, ch.resource, ch.group, ch.name, allowed, ch.allowed, reason)
			}
		}
	})

	t.Run("explicit", func(t *testing.T) {
		for _, ch := range checks {
			attrs := authorizationv1.ResourceAttributes{Namespace: namespace, Verb: ch.verb, Group: ch.group, Resource: ch.resource, Subresource: ch.sub}
			if allowed, reason := mayDo(t, cs, ch.sa, attrs); allowed != ch.allowed {
				t.Errorf("%s %s %s.%s/%s: allowed %v, want %v (%s)", ch.sa, ch.verb, ch.resource, ch.group, ch.sub, allowed, ch.allowed, reason)
			}
		}
	})
}

// mayDo asks the API server whether service account sa of namespace may do
// what attrs say, and why.
func mayDo(t *testing.T, cs kubernetes.Interface, sa string, attrs authorizationv1.ResourceAttributes) (bool, string) {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user(sa),
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
		ResourceAttributes: &attrs,
	}}
	got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Status.Allowed, got.Status.Reason
}

func user(sa string) string { return "system:serviceaccount:" + namespace + ":" + sa }

type rbacRules struct {
	name  string
	rules []rbacv1.PolicyRule
}

func rulesOf(t *testing.T, obj *unstructured.Unstructured) rbacRules {
	t.Helper()
	raw, err := obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole // Role has the same rules field
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	return rbacRules{name: obj.GetName(), rules: role.Rules}
}

// kustomize renders config/<dir> with the kubectl next to kube-apiserver.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out := kubectl(t, "", "kustomize", filepath.Join(kubeassets.RepoRoot(), "config", dir))
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decode kustomize output of %s: %v", dir, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func kubectl(t *testing.T, kubeconfig string, args ...string) []byte {
	t.Helper()
	if kubeconfig != "" {
		args = append([]string{"--kubeconfig", kubeconfig}, args...)
	}
	cmd := exec.Command(filepath.Join(kubeassets.Dir(), "kubectl"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// writeKubeconfig writes a kubeconfig for envtest's admin user.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test ./config -update creates it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (a change of RBAC markers or config/rbac? review it, then go test ./config -update):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
