package compiler

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func sel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func tcp(port int32) Port { return Port{Port: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP} }

var owner = &metav1.OwnerReference{
	APIVersion: "palisade.dev/v1alpha1", Kind: "ServiceIntent", Name: "orders",
	UID: "0b6f3c62-1111-4a6e-9c1d-000000000001", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
}

var compileCases = []struct {
	name string
	in   Input
}{
	{name: "shop-orders", in: Input{
		Name: "orders", Namespace: "shop", Generation: 7, Owner: owner, Target: sel("app", "orders"),
		Callers: []Caller{
			{Name: "checkout", Resolved: true, Namespace: "shop", PodSelector: sel("app", "checkout"),
				Ports: []Port{tcp(8080)}, EgressNamespaces: []string{"shop"}},
			{Name: "fraud", Resolved: true, Namespace: "risk", PodSelector: sel("app", "fraud"),
				Ports: []Port{{Port: intstr.FromString("http")}}, EgressNamespaces: []string{"risk"}},
			{Name: "callers-2", Resolved: true, PodSelector: sel("role", "monitoring"), NamespaceSelector: sel("team", "sre"),
				Ports: []Port{tcp(9090)}, EgressNamespaces: []string{"sre-b", "sre-a"}},
			{Name: "callers-3", Resolved: true, IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.7/32"}},
				Ports: []Port{{Port: intstr.FromInt32(443), EndPort: ptr.To[int32](450), Protocol: corev1.ProtocolTCP}}},
		},
	}},
	{name: "target-unresolved", in: Input{
		Name: "orders", Namespace: "shop", Owner: owner, Target: nil,
		Callers: []Caller{{Name: "checkout", Resolved: true, Namespace: "shop", PodSelector: sel("app", "checkout")}},
	}},
	{name: "no-callers-denies-all", in: Input{Name: "vault", Namespace: "secure", Generation: 1, Target: sel("app", "vault")}},
	{name: "unresolved-caller-grants-nothing", in: Input{
		Name: "orders", Namespace: "shop", Generation: 3, Target: sel("app", "orders"),
		Callers: []Caller{
			{Name: "ghost", Resolved: false, Namespace: "shop", EgressNamespaces: []string{"shop"}},
			{Name: "checkout", Resolved: true, Namespace: "shop", PodSelector: sel("app", "checkout")},
		},
	}},
	{name: "ports-and-protocols", in: Input{
		Name: "dns", Namespace: "infra", Target: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"b", "a", "b"}},
			{Key: "app", Operator: metav1.LabelSelectorOpExists},
		}},
		Callers: []Caller{{Name: "all", Resolved: true, NamespaceSelector: &metav1.LabelSelector{}, Ports: []Port{
			{Port: intstr.FromString("dns"), Protocol: corev1.ProtocolUDP},
			tcp(53),
			{Port: intstr.FromInt32(9000), EndPort: ptr.To[int32](9100), Protocol: corev1.ProtocolSCTP},
			{Port: intstr.FromString("dns"), Protocol: corev1.ProtocolTCP},
			{Port: intstr.FromInt32(53)}, // protocol defaults to TCP: a repeat of tcp(53)
		}}},
	}},
	{name: "duplicate-caller-names", in: Input{
		Name: "orders", Namespace: "shop", Target: sel("app", "orders"),
		Callers: []Caller{
			{Name: "checkout", Resolved: true, Namespace: "shop", PodSelector: sel("app", "checkout"), Ports: []Port{tcp(8080)}, EgressNamespaces: []string{"shop"}},
			{Name: "checkout", Resolved: true, Namespace: "shop", PodSelector: sel("app", "checkout"), Ports: []Port{tcp(9090)}, EgressNamespaces: []string{"shop"}},
		},
	}},
	{name: "long-names", in: Input{
		Name: strings.Repeat("i", 63), Namespace: strings.Repeat("n", 63), Target: sel("app", "x"),
		Callers: []Caller{{Name: strings.Repeat("c", 63), Resolved: true, Namespace: strings.Repeat("m", 63),
			PodSelector: sel("app", "y"), EgressNamespaces: []string{strings.Repeat("m", 63)}}},
	}},
}

func TestCompileGolden(t *testing.T) {
	for _, tc := range compileCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := YAML(Compile(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, got)
		})
	}
}

func TestZeroTrustGolden(t *testing.T) {
	got, err := YAML(ZeroTrust("shop", DNSConfig{
		Namespace:   "kube-system",
		PodSelector: map[string]string{"k8s-app": "kube-dns"},
		Ports:       []Port{{Port: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP}, tcp(53)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "zero-trust", got)
}

// TestCompileIgnoresCallerOrder: the output must not depend on the order of
// callers, ports or except entries in the spec (deterministic output).
func TestCompileIgnoresCallerOrder(t *testing.T) {
	base := compileCases[0].in
	want, err := YAML(Compile(base))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		in := base
		in.Callers = append([]Caller(nil), base.Callers...)
		r.Shuffle(len(in.Callers), func(i, j int) { in.Callers[i], in.Callers[j] = in.Callers[j], in.Callers[i] })
		got, err := YAML(Compile(in))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("caller order changed the output:\n%s\nwant:\n%s", got, want)
		}
	}
}

func TestBoundedName(t *testing.T) {
	long := strings.Repeat("a", 300)
	got := boundedName(long)
	if len(got) > maxNameLength {
		t.Fatalf("name has %d characters, limit %d", len(got), maxNameLength)
	}
	if other := boundedName(long + "b"); other == got {
		t.Fatalf("two long names collide: %s", got)
	}
	if boundedName("palisade-orders") != "palisade-orders" {
		t.Fatal("a short name must stay as it is")
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGenerationLabel: every policy of an intent, compiled or isolated,
// carries the generation it came from; generation 0 (unknown) adds no label.
func TestGenerationLabel(t *testing.T) {
	in := compileCases[0].in
	for _, tc := range []struct {
		name string
		gen  int64
		want string
	}{{"set", 12, "12"}, {"unknown", 0, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			in.Generation = tc.gen
			out := append(Compile(in), Isolate(in)...)
			if len(out) < 3 {
				t.Fatalf("%d policies, want the ingress, egress and isolating ones", len(out))
			}
			for _, p := range out {
				got, ok := p.Labels[v1alpha1.LabelIntentGeneration]
				if got != tc.want || ok != (tc.want != "") {
					t.Errorf("%s/%s: generation label %q (present %v), want %q", p.Namespace, p.Name, got, ok, tc.want)
				}
			}
		})
	}
}

func generationLabel(gen int64) string {
	if gen == 0 {
		return ""
	}
	return strconv.FormatInt(gen, 10)
}
