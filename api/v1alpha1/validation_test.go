package v1alpha1_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/palisade-dev/palisade/internal/kubeassets"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// intentFromSpec builds a ServiceIntent named name whose spec is specYAML.
func intentFromSpec(t *testing.T, name, specYAML string) *unstructured.Unstructured {
	t.Helper()
	spec := map[string]any{}
	if err := yaml.Unmarshal([]byte(specYAML), &spec); err != nil {
		t.Fatalf("bad test spec: %v\n%s", err, specYAML)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "palisade.dev/v1alpha1",
		"kind":       "ServiceIntent",
		"metadata":   map[string]any{"name": name, "namespace": "default"},
		"spec":       spec,
	}}
	return u
}

// manyCallers renders n ipBlock callers with the given number of ports each.
func manyCallers(n, ports int) string {
	var b strings.Builder
	b.WriteString("target: {serviceRef: {name: orders}}\ncallers:\n")
	for i := range n {
		fmt.Fprintf(&b, "- ipBlock: {cidr: 10.%d.%d.0/24}\n", i/256, i%256)
		if ports > 0 {
			b.WriteString("  ports:\n")
			for p := range ports {
				fmt.Fprintf(&b, "  - {port: %d, protocol: TCP}\n", 1000+p)
			}
		}
	}
	return b.String()
}

// callerWithPorts renders one caller whose ports list is the given YAML items.
func callerWithPorts(ports string) string {
	return "target: {serviceRef: {name: orders}}\ncallers:\n- serviceRef: {name: checkout}\n  ports: " + ports
}

func callerWithIPBlock(block string) string {
	return "target: {serviceRef: {name: orders}}\ncallers:\n- ipBlock: " + block
}

func callerWithSelector(sel string) string {
	return "target: {serviceRef: {name: orders}}\ncallers:\n- podSelector: " + sel
}

func manyPorts(n int) string {
	items := make([]string, n)
	for i := range n {
		items[i] = fmt.Sprintf("{port: %d}", 2000+i)
	}
	return "[" + strings.Join(items, ", ") + "]"
}

func manyLabels(n int) string {
	items := make([]string, n)
	for i := range n {
		items[i] = fmt.Sprintf("k%d: v", i)
	}
	return "{matchLabels: {" + strings.Join(items, ", ") + "}}"
}

type invalidCase struct {
	name      string
	intent    string // metadata.name; "bad" when empty
	spec      string
	wantField string // the field path the API server must name
}

var invalidIntents = []invalidCase{
	{name: "no target", spec: "callers: []", wantField: "spec.target"},
	{name: "empty target", spec: "target: {}", wantField: "spec.target"},
	{name: "two target kinds", spec: "target: {serviceRef: {name: a}, podSelector: {}}", wantField: "spec.target"},
	{name: "target name upper case", spec: "target: {serviceRef: {name: Orders}}", wantField: "spec.target.serviceRef.name"},
	{name: "target name unicode", spec: "target: {serviceRef: {name: bestellungen-ü}}", wantField: "spec.target.serviceRef.name"},
	{name: "target name too long", spec: "target: {serviceRef: {name: " + strings.Repeat("a", 64) + "}}", wantField: "spec.target.serviceRef.name"},
	{name: "target workload kind Pod", spec: "target: {workloadRef: {kind: Pod, name: a}}", wantField: "spec.target.workloadRef.kind"},
	{name: "target workload without kind", spec: "target: {workloadRef: {name: a}}", wantField: "spec.target.workloadRef.kind"},
	{name: "unknown mode", spec: "target: {serviceRef: {name: a}}\nmode: Block", wantField: "spec.mode"},
	{name: "caller without peer", spec: callerWithPorts("[{port: 80}]") + "\n- ports: [{port: 80}]", wantField: "spec.callers[1]"},
	{name: "caller with service and ipBlock", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {serviceRef: {name: b}, ipBlock: {cidr: 10.0.0.0/8}}", wantField: "spec.callers[0]"},
	{name: "caller with workload and namespaceSelector", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {workloadRef: {kind: Deployment, name: b}, namespaceSelector: {}}", wantField: "spec.callers[0]"},
	{name: "caller workload kind Pod", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {workloadRef: {kind: Pod, name: b}}", wantField: "spec.callers[0].workloadRef.kind"},
	{name: "caller workload kind lower case", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {workloadRef: {kind: deployment, name: b}}", wantField: "spec.callers[0].workloadRef.kind"},
	{name: "caller service without name", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {serviceRef: {namespace: shop}}", wantField: "spec.callers[0].serviceRef.name"},
	{name: "caller namespace not a DNS label", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {serviceRef: {name: b, namespace: Shop_1}}", wantField: "spec.callers[0].serviceRef.namespace"},
	{name: "caller name with dot", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {name: a.b, serviceRef: {name: b}}", wantField: "spec.callers[0].name"},
	{name: "caller name unicode", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {name: zahlung-ü, serviceRef: {name: b}}", wantField: "spec.callers[0].name"},
	{name: "duplicate caller names", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {name: x, serviceRef: {name: b}}\n- {name: x, serviceRef: {name: c}}", wantField: "spec.callers"},
	{name: "257 callers", spec: manyCallers(257, 0), wantField: "spec.callers"},
	{name: "huge object (about 2 MB)", spec: manyCallers(1100, 32), wantField: "spec.callers"},
	{name: "cidr prefix 33", spec: callerWithIPBlock("{cidr: 10.0.0.0/33}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "cidr host bits set", spec: callerWithIPBlock("{cidr: 10.0.0.1/8}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "cidr garbage", spec: callerWithIPBlock("{cidr: not-a-cidr}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "cidr without prefix", spec: callerWithIPBlock("{cidr: 10.0.0.0}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "cidr leading zeros", spec: callerWithIPBlock("{cidr: 010.0.0.0/8}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "cidr IPv6 host bits set", spec: callerWithIPBlock("{cidr: '2001:db8::1/32'}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "cidr IPv6 upper case", spec: callerWithIPBlock("{cidr: '2001:DB8::/32'}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "except outside cidr", spec: callerWithIPBlock("{cidr: 10.0.0.0/8, except: [192.168.0.0/16]}"), wantField: "spec.callers[0].ipBlock.except"},
	{name: "except equal to cidr", spec: callerWithIPBlock("{cidr: 10.0.0.0/8, except: [10.0.0.0/8]}"), wantField: "spec.callers[0].ipBlock.except"},
	{name: "except wider than cidr", spec: callerWithIPBlock("{cidr: 10.1.0.0/16, except: [10.0.0.0/8]}"), wantField: "spec.callers[0].ipBlock.except"},
	{name: "IPv6 except in IPv4 cidr", spec: callerWithIPBlock("{cidr: 10.0.0.0/8, except: ['2001:db8::/32']}"), wantField: "spec.callers[0].ipBlock.except"},
	{name: "IPv4 except in IPv6 cidr", spec: callerWithIPBlock("{cidr: '2001:db8::/32', except: [10.0.0.0/8]}"), wantField: "spec.callers[0].ipBlock.except"},
	{name: "except not a CIDR", spec: callerWithIPBlock("{cidr: 10.0.0.0/8, except: [10.1.0.0/33]}"), wantField: "spec.callers[0].ipBlock.except[0]"},
	{name: "except host bits set", spec: callerWithIPBlock("{cidr: 10.0.0.0/8, except: [10.1.0.1/16]}"), wantField: "spec.callers[0].ipBlock.except[0]"},
	{name: "port 0", spec: callerWithPorts("[{port: 0}]"), wantField: "spec.callers[0].ports[0].port"},
	{name: "port 65536", spec: callerWithPorts("[{port: 65536}]"), wantField: "spec.callers[0].ports[0].port"},
	{name: "negative port", spec: callerWithPorts("[{port: -1}]"), wantField: "spec.callers[0].ports[0].port"},
	{name: "port name upper case", spec: callerWithPorts("[{port: HTTP}]"), wantField: "spec.callers[0].ports[0].port"},
	{name: "port name too long", spec: callerWithPorts("[{port: a-very-long-port-name}]"), wantField: "spec.callers[0].ports[0].port"},
	{name: "port number as string", spec: callerWithPorts("[{port: '8080'}]"), wantField: "spec.callers[0].ports[0].port"},
	{name: "port name with double dash", spec: callerWithPorts("[{port: web--api}]"), wantField: "spec.callers[0].ports[0].port"},
	{name: "port name unicode", spec: callerWithPorts("[{port: hüttp}]"), wantField: "spec.callers[0].ports[0].port"},
	{name: "endPort below port", spec: callerWithPorts("[{port: 450, endPort: 443}]"), wantField: "spec.callers[0].ports[0].endPort"},
	{name: "endPort with named port", spec: callerWithPorts("[{port: http, endPort: 450}]"), wantField: "spec.callers[0].ports[0].endPort"},
	{name: "endPort 65536", spec: callerWithPorts("[{port: 443, endPort: 65536}]"), wantField: "spec.callers[0].ports[0].endPort"},
	{name: "protocol ICMP", spec: callerWithPorts("[{port: 80, protocol: ICMP}]"), wantField: "spec.callers[0].ports[0].protocol"},
	{name: "protocol lower case", spec: callerWithPorts("[{port: 80, protocol: tcp}]"), wantField: "spec.callers[0].ports[0].protocol"},
	{name: "duplicate ports", spec: callerWithPorts("[{port: 8080}, {port: 8080, protocol: TCP}]"), wantField: "spec.callers[0].ports"},
	{name: "duplicate named ports", spec: callerWithPorts("[{port: http, protocol: UDP}, {port: http, protocol: UDP}]"), wantField: "spec.callers[0].ports"},
	{name: "33 ports", spec: callerWithPorts(manyPorts(33)), wantField: "spec.callers[0].ports"},
	{name: "label key invalid", spec: callerWithSelector("{matchLabels: {'bad key!': x}}"), wantField: "spec.callers[0].podSelector.matchLabels"},
	{name: "label key unicode", spec: callerWithSelector("{matchLabels: {rölle: x}}"), wantField: "spec.callers[0].podSelector.matchLabels"},
	{name: "label value unicode", spec: callerWithSelector("{matchLabels: {role: überwachung}}"), wantField: "spec.callers[0].podSelector.matchLabels.role"},
	{name: "label value too long", spec: callerWithSelector("{matchLabels: {role: " + strings.Repeat("v", 64) + "}}"), wantField: "spec.callers[0].podSelector.matchLabels.role"},
	{name: "33 match labels", spec: callerWithSelector(manyLabels(33)), wantField: "spec.callers[0].podSelector.matchLabels"},
	{name: "In without values", spec: callerWithSelector("{matchExpressions: [{key: role, operator: In}]}"), wantField: "spec.callers[0].podSelector.matchExpressions[0].values"},
	{name: "Exists with values", spec: callerWithSelector("{matchExpressions: [{key: role, operator: Exists, values: [a]}]}"), wantField: "spec.callers[0].podSelector.matchExpressions[0].values"},
	{name: "unknown operator", spec: callerWithSelector("{matchExpressions: [{key: role, operator: Equals, values: [a]}]}"), wantField: "spec.callers[0].podSelector.matchExpressions[0].operator"},
	{name: "namespaceSelector bad key", spec: "target: {serviceRef: {name: a}}\ncallers:\n- namespaceSelector: {matchLabels: {'-team': sre}}", wantField: "spec.callers[0].namespaceSelector.matchLabels"},
	{name: "target selector bad value", spec: "target: {podSelector: {matchLabels: {app: 'a b'}}}", wantField: "spec.target.podSelector.matchLabels.app"},
	// Address forms other implementations read differently, whitespace,
	// zones, empty and over-long parts.
	{name: "cidr IPv4-mapped IPv6", spec: callerWithIPBlock("{cidr: '::ffff:10.0.0.0/104'}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "except IPv4-mapped IPv6", spec: callerWithIPBlock("{cidr: '::/0', except: ['::ffff:10.0.0.0/104']}"), wantField: "spec.callers[0].ipBlock.except[0]"},
	{name: "cidr with a zone", spec: callerWithIPBlock("{cidr: 'fe80::/10%eth0'}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "cidr with leading space", spec: callerWithIPBlock("{cidr: ' 10.0.0.0/8'}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "cidr empty", spec: callerWithIPBlock("{cidr: ''}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "IPv4 cidr with IPv6 prefix length", spec: callerWithIPBlock("{cidr: 10.0.0.0/64}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "IPv6 cidr not compressed", spec: callerWithIPBlock("{cidr: '2001:db8:0:0::/64'}"), wantField: "spec.callers[0].ipBlock.cidr"},
	{name: "duplicate except", spec: callerWithIPBlock("{cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.1.0.0/16]}"), wantField: "spec.callers[0].ipBlock.except"},
	{name: "endPort without port", spec: callerWithPorts("[{endPort: 90}]"), wantField: "spec.callers[0].ports[0].port"},
	{name: "caller name empty", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {name: '', serviceRef: {name: b}}", wantField: "spec.callers[0].name"},
	{name: "caller namespace too long", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {serviceRef: {name: b, namespace: " + strings.Repeat("n", 64) + "}}", wantField: "spec.callers[0].serviceRef.namespace"},
	{name: "workload namespace unicode", spec: "target: {serviceRef: {name: a}}\ncallers:\n- {workloadRef: {kind: Deployment, name: b, namespace: zahlungsverkehr-ö}}", wantField: "spec.callers[0].workloadRef.namespace"},
	{name: "label key prefix longer than 253", spec: callerWithSelector("{matchLabels: {" + strings.Repeat("p", 254) + "/app: x}}"), wantField: "spec.callers[0].podSelector.matchLabels"},
	{name: "target label key unicode", spec: "target: {podSelector: {matchLabels: {ключ: a}}}", wantField: "spec.target.podSelector.matchLabels"},
	{name: "expression key prefix longer than 253", spec: callerWithSelector("{matchExpressions: [{key: " + strings.Repeat("p", 254) + "/app, operator: Exists}]}"), wantField: "spec.callers[0].podSelector.matchExpressions[0].key"},
	{name: "expression key invalid", spec: callerWithSelector("{matchExpressions: [{key: 'bad key', operator: Exists}]}"), wantField: "spec.callers[0].podSelector.matchExpressions[0].key"},
	{name: "expression value unicode", spec: callerWithSelector("{matchExpressions: [{key: role, operator: In, values: [prüfer]}]}"), wantField: "spec.callers[0].podSelector.matchExpressions[0].values[0]"},
	{name: "intent name with dot", intent: "orders.v2", spec: "target: {serviceRef: {name: a}}", wantField: "metadata.name"},
	{name: "intent name default-deny", intent: "default-deny", spec: "target: {serviceRef: {name: a}}", wantField: "metadata.name"},
	{name: "intent name longer than a label", intent: strings.Repeat("a", 64), spec: "target: {serviceRef: {name: a}}", wantField: "metadata.name"},
}

var validIntents = []struct {
	name string
	spec string
}{
	{name: "the issue's example", spec: `
target: {serviceRef: {name: orders}}
mode: Enforce
callers:
- name: checkout
  serviceRef: {name: checkout, namespace: shop}
  ports: [{port: 8080, protocol: TCP}]
- workloadRef: {kind: Deployment, name: fraud, namespace: risk}
  ports: [{port: http}]
- podSelector: {matchLabels: {role: monitoring}}
  namespaceSelector: {matchLabels: {team: sre}}
  ports: [{port: 9090}]
- ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.7/32]}
  ports: [{port: 443, endPort: 450, protocol: TCP}]
`},
	{name: "no callers", spec: "target: {serviceRef: {name: orders}}"},
	{name: "audit mode", spec: "target: {serviceRef: {name: orders}}\nmode: Audit"},
	{name: "workload target CronJob", spec: "target: {workloadRef: {kind: CronJob, name: report}}"},
	{name: "selector target with expressions", spec: "target: {podSelector: {matchExpressions: [{key: app, operator: In, values: [a, b]}, {key: canary, operator: DoesNotExist}]}}"},
	{name: "namespaceSelector alone", spec: "target: {serviceRef: {name: a}}\ncallers:\n- namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}"},
	{name: "empty podSelector", spec: callerWithSelector("{}")},
	{name: "IPv6 block with except", spec: callerWithIPBlock("{cidr: '2001:db8::/32', except: ['2001:db8:1::/48']}")},
	{name: "single address", spec: callerWithIPBlock("{cidr: 198.51.100.7/32}")},
	{name: "port bounds and SCTP", spec: callerWithPorts("[{port: 1}, {port: 65535, protocol: SCTP}, {port: 53, protocol: UDP}, {port: 53}]")},
	{name: "endPort equal to port", spec: callerWithPorts("[{port: 443, endPort: 443}]")},
	{name: "same port, two protocols", spec: callerWithPorts("[{port: dns, protocol: UDP}, {port: dns, protocol: TCP}]")},
	{name: "15-character port name", spec: callerWithPorts("[{port: metrics-http-v2}]")},
	{name: "32 ports", spec: callerWithPorts(manyPorts(32))},
	{name: "256 callers", spec: manyCallers(256, 2)},
	{name: "prefixed label key", spec: callerWithSelector("{matchLabels: {app.kubernetes.io/name: web, empty: ''}}")},
	{name: "253-character label key prefix", spec: callerWithSelector("{matchLabels: {" + strings.Repeat("p", 253) + "/app: x}, matchExpressions: [{key: " + strings.Repeat("q", 253) + "/app, operator: Exists}]}")},
	{name: "63-character names", spec: "target: {serviceRef: {name: " + strings.Repeat("a", 63) + "}}\ncallers:\n- {name: " + strings.Repeat("b", 63) + ", serviceRef: {name: c}}"},
}

func TestIntentValidation(t *testing.T) {
	cfg := testenv.Start(t)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ctx := context.Background()
	if len(invalidIntents) < 40 {
		t.Fatalf("the invalid-intent table must hold at least 40 cases, has %d", len(invalidIntents))
	}

	t.Run("invalid", func(t *testing.T) {
		for i, tc := range invalidIntents {
			t.Run(tc.name, func(t *testing.T) {
				name := tc.intent
				if name == "" {
					name = fmt.Sprintf("bad-%d", i)
				}
				err := c.Create(ctx, intentFromSpec(t, name, tc.spec))
				if err == nil {
					t.Fatalf("the API server accepted an invalid intent; want an error on %s", tc.wantField)
				}
				if !apierrors.IsInvalid(err) {
					t.Fatalf("want an Invalid error on %s, got: %v", tc.wantField, err)
				}
				if !namesField(err, tc.wantField) {
					t.Fatalf("the error does not name field %s: %v", tc.wantField, err)
				}
			})
		}
	})

	t.Run("valid", func(t *testing.T) {
		for i, tc := range validIntents {
			t.Run(tc.name, func(t *testing.T) {
				obj := intentFromSpec(t, fmt.Sprintf("good-%d", i), tc.spec)
				if err := c.Create(ctx, obj); err != nil {
					t.Fatalf("the API server rejected a valid intent: %v", err)
				}
			})
		}
	})

	t.Run("defaults", func(t *testing.T) {
		obj := intentFromSpec(t, "defaults", callerWithPorts("[{port: 80}]"))
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create: %v", err)
		}
		mode, _, _ := unstructured.NestedString(obj.Object, "spec", "mode")
		if mode != "Enforce" {
			t.Errorf("spec.mode defaulted to %q, want Enforce", mode)
		}
		callers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "callers")
		ports, _, _ := unstructured.NestedSlice(callers[0].(map[string]any), "ports")
		if proto := ports[0].(map[string]any)["protocol"]; proto != "TCP" {
			t.Errorf("protocol defaulted to %v, want TCP", proto)
		}
	})
}

// namesField reports whether the Invalid error names the field exactly.
//
// Rules on metadata.name must sit at the schema's root (a CRD schema may not
// declare metadata's properties, so fieldPath cannot point there); the API
// server reports them without a field, and their messages start with the path.
func namesField(err error, field string) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, cause := range status.Status().Details.Causes {
		if cause.Field == field {
			return true
		}
		if field == "metadata.name" && (cause.Field == "" || cause.Field == "<nil>") && strings.Contains(cause.Message, "metadata.name must") {
			return true
		}
	}
	return false
}

// TestSamplesAreValid creates every ServiceIntent of config/samples.
func TestSamplesAreValid(t *testing.T) {
	cfg := testenv.Start(t)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(kubeassets.RepoRoot(), "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	intents := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch u.GetKind() {
			case "Namespace", "ServiceIntent":
			default:
				continue
			}
			if u.GetKind() == "ServiceIntent" {
				intents++
			}
			if err := c.Create(context.Background(), u); err != nil {
				t.Errorf("%s: %s %s: %v", filepath.Base(f), u.GetKind(), u.GetName(), err)
			}
		}
	}
	if intents < 4 {
		t.Errorf("found %d sample intents, want the shop's 4", intents)
	}
}
