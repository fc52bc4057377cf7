package main

import "testing"

func TestSCTPConfig(t *testing.T) {
	tests := []struct{ name, config, want string }{
		{"no SCTP, no modules", "# CONFIG_MODULES is not set\n# CONFIG_IP_SCTP is not set\n",
			"the kernel is built without SCTP (CONFIG_IP_SCTP) and without loadable modules (CONFIG_MODULES)"},
		{"no SCTP", "CONFIG_MODULES=y\n# CONFIG_IP_SCTP is not set\n", "the kernel is built without SCTP (CONFIG_IP_SCTP is not set)"},
		{"module", "CONFIG_MODULES=y\nCONFIG_IP_SCTP=m\n", "SCTP is a module (CONFIG_IP_SCTP=m) that is not loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sctpConfig(tt.config); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
