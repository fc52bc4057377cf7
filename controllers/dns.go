package controllers

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// ParseDNSConfig reads the controller's DNS flags: a namespace, a selector
// such as "k8s-app=kube-dns" and ports such as "53/UDP,53/TCP".
func ParseDNSConfig(namespace, selector, ports string) (compiler.DNSConfig, error) {
	cfg := compiler.DNSConfig{Namespace: namespace}
	if namespace == "" {
		return cfg, fmt.Errorf("dns namespace must not be empty")
	}
	set, err := labels.ConvertSelectorToLabelsMap(selector)
	if err != nil {
		return cfg, fmt.Errorf("dns pod selector %q: %w", selector, err)
	}
	cfg.PodSelector = set
	for item := range strings.SplitSeq(ports, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		num, proto, found := strings.Cut(item, "/")
		if !found {
			proto = string(corev1.ProtocolTCP)
		}
		proto = strings.ToUpper(proto)
		switch corev1.Protocol(proto) {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			return cfg, fmt.Errorf("dns port %q: protocol must be TCP, UDP or SCTP", item)
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 {
			return cfg, fmt.Errorf("dns port %q: port must be a number from 1 to 65535", item)
		}
		cfg.Ports = append(cfg.Ports, compiler.Port{Port: intstr.FromInt(n), Protocol: corev1.Protocol(proto)})
	}
	if len(cfg.Ports) == 0 {
		return cfg, fmt.Errorf("dns ports must not be empty")
	}
	return cfg, nil
}
