package main

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestFlowFlags(t *testing.T) {
	cases := []struct {
		args    []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"--report-interval=500ms"}, "--report-interval"},
		{[]string{"--report-interval=1m", "--flow-window=30s"}, "--flow-window"},
		{[]string{"--flow-table-size=0"}, "--flow-table-size"},
		{[]string{"--flow-log-group=70000"}, "--flow-log-group"},
		{[]string{"--hubble-tls-cert-file=/c.pem"}, "go together"},
		{[]string{"--hubble-tls-cert-file=/c.pem", "--hubble-tls-key-file=/k.pem", "--hubble-bind-address=0"}, ""},
		// Plaintext flows on a routable address are refused; loopback and
		// TLS are not.
		{[]string{"--hubble-bind-address=:4244"}, "--hubble-bind-address"},
		{[]string{"--hubble-bind-address=10.0.0.1:4244"}, "--hubble-bind-address"},
		{[]string{"--hubble-bind-address=[::1]:4244"}, ""},
		{[]string{"--hubble-bind-address=localhost:4244"}, ""},
		{[]string{"--hubble-bind-address=:4244", "--hubble-tls-cert-file=/c.pem", "--hubble-tls-key-file=/k.pem"}, ""},
		{[]string{"--hubble-mtls-bind-address=:4245"}, ""},
		{[]string{"--hubble-mtls-bind-address=:4245", "--hubble-mtls-cert-lifetime=1m"}, "--hubble-mtls-cert-lifetime"},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("agent", flag.ContinueOnError)
		f := flowDefaults()
		f.bind(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		err := f.validate()
		if (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%v: got %v, want an error naming %q", c.args, err, c.wantErr)
		}
	}
	f := flowDefaults()
	f.bind(flag.NewFlagSet("agent", flag.ContinueOnError))
	if !f.enabled || f.reportInterval != 10*time.Second || f.window != time.Hour || f.tableSize != 10000 || f.hubbleAddr != "127.0.0.1:4244" || f.mtlsAddr != "0" {
		t.Errorf("defaults %+v", f)
	}
}
