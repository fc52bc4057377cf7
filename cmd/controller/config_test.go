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
