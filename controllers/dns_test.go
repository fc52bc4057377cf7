package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseDNSConfig(t *testing.T) {
	cfg, err := ParseDNSConfig("kube-system", "k8s-app=kube-dns", "53/UDP, 53/tcp,5353")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PodSelector["k8s-app"] != "kube-dns" || len(cfg.Ports) != 3 {
		t.Fatalf("parsed %+v", cfg)
	}
	want := []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP, corev1.ProtocolTCP}
	for i, p := range cfg.Ports {
		if p.Protocol != want[i] || (i < 2 && p.Port.IntValue() != 53) || (i == 2 && p.Port.IntValue() != 5353) {
			t.Errorf("port %d = %+v", i, p)
		}
	}
	for _, bad := range []struct{ ns, sel, ports string }{
		{"", "k8s-app=kube-dns", "53/UDP"},
		{"kube-system", "k8s-app", "53/UDP"},
		{"kube-system", "k8s-app=kube-dns", ""},
		{"kube-system", "k8s-app=kube-dns", "0/UDP"},
		{"kube-system", "k8s-app=kube-dns", "65536/TCP"},
		{"kube-system", "k8s-app=kube-dns", "53/ICMP"},
		{"kube-system", "k8s-app=kube-dns", "dns/UDP"},
	} {
		if _, err := ParseDNSConfig(bad.ns, bad.sel, bad.ports); err == nil {
			t.Errorf("ParseDNSConfig(%q, %q, %q) accepted bad input", bad.ns, bad.sel, bad.ports)
		}
	}
}
