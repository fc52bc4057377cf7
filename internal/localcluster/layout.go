package localcluster

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
)

// The netpol conformance layout, as the upstream network-policy e2e tests
// have it: namespaces x, y, z labelled ns=<name>, pods a, b, c in each
// labelled pod=<name>, each serving TCP, UDP and SCTP on 80 and 81.
var (
	LayoutNamespaces = []string{"x", "y", "z"}
	LayoutPods       = []string{"a", "b", "c"}
	LayoutPorts      = []int32{80, 81}
	LayoutProtocols  = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
)

// LayoutPortName is the container port name the layout gives a port and
// protocol: serve-80-tcp, serve-81-sctp, ...
func LayoutPortName(port int32, proto corev1.Protocol) string {
	return fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
}

func layoutPorts() []corev1.ContainerPort {
	var ports []corev1.ContainerPort
	for _, port := range LayoutPorts {
		for _, proto := range LayoutProtocols {
			ports = append(ports, corev1.ContainerPort{Name: LayoutPortName(port, proto), ContainerPort: port, Protocol: proto})
		}
	}
	return ports
}

// DeployClusterDNS creates kube-system/cluster-dns (k8s-app=kube-dns) on the
// first node, answering DNS on 53 over UDP and TCP.
func (c *Cluster) DeployClusterDNS(ctx context.Context) (*Pod, error) {
	return c.CreatePod(ctx, PodSpec{
		Namespace: "kube-system", Name: "cluster-dns", Node: c.State.Nodes[0].Name,
		Labels: map[string]string{"k8s-app": "kube-dns"},
		Ports: []corev1.ContainerPort{
			{Name: "dns", ContainerPort: DNSPort, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", ContainerPort: DNSPort, Protocol: corev1.ProtocolTCP},
		},
		DNS: true,
	})
}

// DeployNetpolLayout creates the conformance layout, spreading the pods over
// the nodes round robin (x/a on node-1, x/b on node-2, ...).
func (c *Cluster) DeployNetpolLayout(ctx context.Context) ([]*Pod, error) {
	for _, ns := range LayoutNamespaces {
		if err := c.EnsureNamespace(ctx, ns, map[string]string{"ns": ns}); err != nil {
			return nil, err
		}
	}
	pods := make([]*Pod, len(LayoutNamespaces)*len(LayoutPods))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	i := 0
	for _, ns := range LayoutNamespaces {
		for _, name := range LayoutPods {
			idx := i
			node := c.State.Nodes[idx%len(c.State.Nodes)].Name
			g.Go(func() error {
				p, err := c.CreatePod(gctx, PodSpec{
					Namespace: ns, Name: name, Node: node,
					Labels: map[string]string{"pod": name},
					Ports:  layoutPorts(),
				})
				pods[idx] = p
				return err
			})
			i++
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	c.State.Layout = "netpol"
	return pods, c.saveState()
}
