package localcluster

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
)

// Real nodes: instead of playing the kubelet, the cluster runs per node a
// containerd, a kubelet and a kube-proxy inside the node's network namespace
// and a mount namespace of their own, plus kube-controller-manager and
// kube-scheduler beside the API server. Pods are real containers (runc),
// wired by the CNI plugins ptp + host-local: a /32 per pod and a route on its
// node, the routed model the agent assumes. Palisade itself runs as images:
// a controller Deployment and an agent DaemonSet applied from config/default.
//
// Topology (two nodes):
//
//	root netns: etcd, kube-apiserver (10.99.0.1, the host end of a veth into
//	            the fabric), kube-controller-manager, kube-scheduler
//	palisade-fabric: bridge br0 joining the host and the nodes (10.99.0.0/24)
//	palisade-node-1: eth0 10.99.0.11; containerd, kubelet, kube-proxy; pods 10.244.1.0/24
//	palisade-node-2: eth0 10.99.0.12; ...;                            pods 10.244.2.0/24
//
// The host routes each node's pod CIDR via that node, so pods reach the API
// server (the kubernetes Service's endpoint is 10.99.0.1) and it reaches the
// kubelets for exec and logs. Everything the nodes make (routes, the host
// link, netfilter state) lives in namespaces `down` deletes; the cgroups
// live under one cgroup root per node, which `down` empties and removes.

const (
	// hostLink is the host's end of its link into the fabric.
	hostLink = "palisade0"
	// clusterDNSIP is the kube-dns Service's address (kubelet clusterDNS).
	clusterDNSIP = "10.96.0.10"
	// clusterCIDR holds every node's pod CIDR.
	clusterCIDR = "10.244.0.0/16"
	// cniBinDir is where Debian's containernetworking-plugins installs.
	cniBinDir = "/usr/lib/cni"
)

// hostIP is the host's address on the fabric, where the API server listens.
var hostIP = netip.AddrFrom4([4]byte{10, 99, 0, 1})

// The images every real node holds: containerd's sandbox image and the
// ones the kubelet runs from config/default, CoreDNS and the tests. Their
// names are the ones pods (and the upstream e2e suite of Kubernetes v1.37)
// ask for; nothing is ever pulled.
const (
	PauseImage     = "registry.k8s.io/pause:3.10.2"
	CoreDNSImage   = "registry.k8s.io/coredns/coredns:v1.14.6"
	AgnhostImage   = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
	PalisadeImage  = "palisade:dev"
	PodserverImage = "palisade-podserver:dev"
)

// realNodeDir holds one node's configuration and runtime state.
func (c *Cluster) realNodeDir(n NodeState) string { return filepath.Join(c.Dir, "nodes", n.Name) }

// containerdSocket is the node's containerd (CRI) socket.
func (c *Cluster) containerdSocket(n NodeState) string {
	return filepath.Join(c.realNodeDir(n), "containerd.sock")
}

// cgroupRoot is the node kubelet's cgroupRoot: every pod of the node lives
// below it, in each cgroup hierarchy.
func (c *Cluster) cgroupRoot(n NodeState) string {
	return "/" + c.State.Prefix + "-" + n.Name
}

// realNodeBinaries are the programs real nodes need, with where they come
// from when missing. agnhost is for the tests' pods only: without it
// (hack/setup-real-nodes.sh --no-agnhost, as make demo runs it) the nodes
// hold no agnhost image.
func realNodeBinaries(assets string) (map[string]string, error) {
	bins := map[string]string{}
	for _, b := range []string{"kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager", "kubectl", "pause", "coredns"} {
		p := filepath.Join(assets, b)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("no %s in %s: run hack/setup-real-nodes.sh: %w", b, assets, err)
		}
		bins[b] = p
	}
	if p := filepath.Join(assets, "agnhost"); fileExists(p) {
		bins["agnhost"] = p
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "nft", "nsenter", "unshare"} {
		p, err := exec.LookPath(b)
		if err != nil {
			return nil, fmt.Errorf("no %s on PATH: run hack/setup-real-nodes.sh: %w", b, err)
		}
		bins[b] = p
	}
	for _, b := range []string{"ptp", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, b)); err != nil {
			return nil, fmt.Errorf("no CNI plugin %s in %s: run hack/setup-real-nodes.sh: %w", b, cniBinDir, err)
		}
	}
	return bins, nil
}
