package main

import (
	"strings"
	"testing"
)

// TestConfigValidateNamesEveryBadFlag: one validation reports every
// unusable flag, each by its name.
func TestConfigValidateNamesEveryBadFlag(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	c, err := parseConfig([]string{"--backend=ebpf", "--cold-start=maybe", "--flow-table-size=0"})
	if err != nil {
		t.Fatal(err)
	}
	err = c.validate()
	for _, want := range []string{"--backend", "--cold-start", "--flow-table-size", "--node-name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate() = %v, want it to name %s", err, want)
		}
	}
	u, err := parseConfig([]string{"uninstall"})
	if err != nil {
		t.Fatal(err)
	}
	if !u.uninstall {
		t.Error("uninstall subcommand not parsed")
	}
	if err := u.validate(); err != nil {
		t.Errorf("uninstall needs no node name: %v", err)
	}
}
