package main

import (
	"flag"
	"strings"
	"testing"
)

func TestConfigDefaultsAreValid(t *testing.T) {
	var c Config
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	opts, err := c.ControllerOptions()
	if err != nil || opts.Workers != c.Workers || opts.CountUpdatesPerSecond != c.CountUpdatesPerSecond {
		t.Fatalf("options %+v, %v", opts, err)
	}
}

func TestConfigValidateNamesEveryBadFlag(t *testing.T) {
	var c Config
	c.Defaults()
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	c.Bind(fs)
	if err := fs.Parse([]string{"--workers=0", "--count-updates-per-second=-1", "--unused-caller-window=0", "--dns-ports=x"}); err != nil {
		t.Fatal(err)
	}
	err := c.Validate()
	for _, flag := range []string{"--workers", "--count-updates-per-second", "--unused-caller-window", "--dns-ports"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("Validate() = %v, want it to name %s", err, flag)
		}
	}
}

func TestConfigZeroCountRateMeansNoPacing(t *testing.T) {
	var c Config
	c.Defaults()
	c.CountUpdatesPerSecond = 0
	if opts, err := c.ControllerOptions(); err != nil || opts.CountUpdatesPerSecond >= 0 {
		t.Fatalf("0 count updates per second: options %v, %v; want a negative rate (no pacing)", opts.CountUpdatesPerSecond, err)
	}
}

func TestConfigCASecret(t *testing.T) {
	for _, c := range []struct {
		flag    string
		wantErr bool
		want    string
	}{
		{"palisade-system/palisade-ca", false, "palisade-system/palisade-ca"},
		{"", false, "/"}, // no signer
		{"palisade-ca", true, ""},
		{"a/b/c", true, ""},
		{"/palisade-ca", true, ""},
	} {
		var cfg Config
		cfg.Defaults()
		cfg.CASecret = c.flag
		err := cfg.Validate()
		if (err != nil) != c.wantErr || (err != nil && !strings.Contains(err.Error(), "--ca-secret")) {
			t.Errorf("--ca-secret=%q: %v", c.flag, err)
			continue
		}
		if c.wantErr {
			continue
		}
		opts, err := cfg.ControllerOptions()
		if err != nil || opts.CASecret.String() != c.want {
			t.Errorf("--ca-secret=%q: options %v, %v; want %s", c.flag, opts.CASecret, err, c.want)
		}
	}
}
