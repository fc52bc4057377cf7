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

// TestNFTTableFlag: --nft-table names the backend's table and rejects what
// nftables would not take as a plain name.
func TestNFTTableFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"palisade", true}, {"palisade-2", true}, {"p_2", true},
		{"", false}, {"2palisade", false}, {"pali sade", false}, {"pali;sade", false}, {strings.Repeat("p", 65), false},
	} {
		c, err := parseConfig([]string{"--node-name=n", "--nft-table=" + tc.name})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.validate(); (err == nil) != tc.ok {
			t.Errorf("--nft-table=%q: validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if c, _ := parseConfig(nil); c.nftTable != "palisade" {
		t.Errorf("default table %q, want palisade", c.nftTable)
	}
}
