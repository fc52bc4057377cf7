package main

import (
	"path/filepath"
	"testing"
)

func TestReadRun(t *testing.T) {
	r, err := readRun(filepath.Join("testdata", "full", "iptables"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Suite != "Kubernetes NetworkPolicy e2e" || r.Focus != "Netpol" || r.Skip != "SCTPConnectivity" || r.LabelFilter != labelFilter {
		t.Errorf("suite %q focus %q skip %q label filter %q", r.Suite, r.Focus, r.Skip, r.LabelFilter)
	}
	if len(r.Specs) != 5 {
		t.Fatalf("%d specs, want 5", len(r.Specs))
	}
	ddi := r.Specs[1]
	if ddi.Name != tcpSpec("should support a 'default-deny-ingress' policy") || ddi.State != "passed" || ddi.Seconds != 14.744416945 {
		t.Errorf("spec 1: %+v", ddi)
	}
	failed := r.Specs[3]
	wantMsg := "Had 2 wrong results in reachability matrix\nExpected\n    <int>: 2\nto equal\n    <int>: 0"
	if failed.State != "failed" || failed.Message != wantMsg ||
		failed.Location != "k8s.io/kubernetes/test/e2e/network/netpol/test_helper.go:148" {
		t.Errorf("failed spec: %+v", failed)
	}
}

func TestJUnitSkipMessage(t *testing.T) {
	tests := []struct {
		name, message, want string
	}{
		{"left out by the filters", "skipped", ""},
		{"called Skip", "skipped - Only supported for providers [gce] (not local)", "Only supported for providers [gce] (not local)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := junitCase{Name: "[It] x", Status: "skipped", Skipped: &junitMessage{Message: tt.message}}
			if got := c.spec().Message; got != tt.want {
				t.Errorf("message %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseJUnitRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not XML":       "{}",
		"two suites":    `<testsuites><testsuite timestamp="2026-12-03T16:09:43"/><testsuite timestamp="2026-12-03T16:09:43"/></testsuites>`,
		"bad timestamp": `<testsuites><testsuite timestamp="yesterday"/></testsuites>`,
	} {
		if _, err := parseJUnit([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
