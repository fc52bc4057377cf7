package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-dev/palisade/internal/localcluster"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// parsePodFlags reads --node, --label k=v and --port [name:]port[/PROTO].
func parsePodFlags(ns, name string, args []string) (localcluster.PodSpec, error) {
	fs := flag.NewFlagSet("pod create", flag.ContinueOnError)
	node := fs.String("node", "", "node name (default: node-1)")
	var labels, ports listFlag
	fs.Var(&labels, "label", "label k=v (repeatable)")
	fs.Var(&ports, "port", "container port [name:]port[/TCP|UDP|SCTP] (repeatable)")
	if err := fs.Parse(args); err != nil {
		return localcluster.PodSpec{}, err
	}
	spec := localcluster.PodSpec{Namespace: ns, Name: name, Node: *node, Labels: map[string]string{}}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return spec, fmt.Errorf("label %q is not k=v", l)
		}
		spec.Labels[k] = v
	}
	for _, p := range ports {
		cp, err := parsePort(p)
		if err != nil {
			return spec, err
		}
		spec.Ports = append(spec.Ports, cp)
	}
	return spec, nil
}

func parsePort(s string) (corev1.ContainerPort, error) {
	var cp corev1.ContainerPort
	if n, rest, ok := strings.Cut(s, ":"); ok {
		cp.Name, s = n, rest
	}
	num, proto, _ := strings.Cut(s, "/")
	cp.Protocol = corev1.ProtocolTCP
	if proto != "" {
		cp.Protocol = corev1.Protocol(strings.ToUpper(proto))
	}
	p, err := strconv.Atoi(num)
	if err != nil || p < 1 || p > 65535 {
		return cp, fmt.Errorf("invalid port %q", s)
	}
	cp.ContainerPort = int32(p)
	return cp, nil
}
