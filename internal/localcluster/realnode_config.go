package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// nodeFiles is what one real node's daemons read, all under its directory.
type nodeFiles struct {
	Dir, Name, IP, PodCIDR, CgroupRoot, Socket  string
	Kubeconfig, CACert, ClusterDNS, ClusterCIDR string
	CNIBinDir, PauseImage, Taint, Prefix        string
	// Bins are the programs' paths (realNodeBinaries).
	Bins map[string]string
}

// containerd 1.6 (Debian bookworm) and 2.x both read config version 2.
//
// restrict_oom_score_adj: runc fails every sandbox with "can't get final
// child's PID from pipe: EOF" when it cannot write /proc/self/oom_score_adj,
// which needs CAP_SYS_RESOURCE; some VMs drop it from every bounding set.
// netns_mounts_under_state_dir keeps two nodes' pod netns files apart (and
// out of /run/netns). Every path is the node's own, so that two containerds
// on one host share nothing.
const containerdConfig = `version = 2
root = "{{.Dir}}/containerd/root"
state = "{{.Dir}}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{{.Socket}}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.PauseImage}}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{{.Dir}}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.CNIBinDir}}"
    conf_dir = "{{.Dir}}/cni"
`

// ptp gives each pod a veth with a /32 and a route on the node; host-local
// hands out the node's pod CIDR, keeping its leases in the node's directory.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "palisade",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "{{.PodCIDR}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "{{.Dir}}/cni-leases"
      }
    }
  ]
}
`

// kubelet >= 1.35 refuses cgroup v1 unless failCgroupV1 is false. The
// eviction thresholds are tiny because the kubelet measures the whole
// machine, which other nodes and the build share. The node registers
// tainted: no workload starts before Palisade's agent there is ready.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
cgroupRoot: {{.CgroupRoot}}
containerRuntimeEndpoint: unix://{{.Socket}}
address: {{.IP}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: {{.CACert}}}
authorization: {mode: AlwaysAllow}
clusterDNS: [{{.ClusterDNS}}]
clusterDomain: cluster.local
resolvConf: {{.Dir}}/resolv.conf
podLogsDir: {{.Dir}}/pod-logs
registerWithTaints:
- {key: {{.Taint}}, effect: NoSchedule}
evictionHard: {memory.available: 20Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
localStorageCapacityIsolation: false
`

// kube-proxy must not touch the host's global conntrack sysctls (zeros keep
// them as they are).
const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
hostnameOverride: {{.Name}}
clusterCIDR: {{.ClusterCIDR}}
bindAddress: {{.IP}}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection: {kubeconfig: {{.Kubeconfig}}}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`

// nodeScript runs in the node's network namespace and a mount namespace of
// its own (slave to the host's): mounts made there (pod volumes, netns
// files, overlay roots) vanish with it, and bind mounts give each node its
// own copy of the host paths its pods use. containerd and kubelet share
// this mount namespace: projected volumes must be visible to both.
const nodeScript = `set -eu
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount --bind {{.Dir}}/var-log-containers /var/log/containers
mount --bind {{.Dir}}/var-lib-palisade /var/lib/palisade
{{index .Bins "containerd"}} --config {{.Dir}}/containerd.toml >>{{.Dir}}/containerd.log 2>&1 &
i=0
while [ ! -S {{.Socket}} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
{{index .Bins "kube-proxy"}} --config={{.Dir}}/kube-proxy.yaml >>{{.Dir}}/kube-proxy.log 2>&1 &
{{index .Bins "kubelet"}} --config={{.Dir}}/kubelet.yaml --kubeconfig={{.Kubeconfig}} \
  --root-dir={{.Dir}}/kubelet --hostname-override={{.Name}} --node-ip={{.IP}} \
  --v=1 >>{{.Dir}}/kubelet.log 2>&1 &
wait
`

// hostPathsShadowed are host directories the kubelet and Palisade's agent
// write to whatever their configuration: each node mounts its own copy
// over them (nodeScript). They are created on the host when missing, and
// removed again by down (hostPathsCreated).
var hostPathsShadowed = []string{"/var/log/containers", "/var/lib/palisade"}

// hostFilesOfPods are host files that pods of every node share: the agent
// DaemonSet's xtables lock (FileOrCreate), as kube-proxy's DaemonSet does.
var hostFilesOfPods = []string{"/run/xtables.lock"}

// writeNodeFiles renders the node's configuration into its directory.
func (c *Cluster) writeNodeFiles(n NodeState, bins map[string]string) (nodeFiles, error) {
	f := nodeFiles{
		Dir: c.realNodeDir(n), Name: n.Name, IP: n.IP, PodCIDR: n.PodCIDR,
		CgroupRoot: c.cgroupRoot(n), Socket: c.containerdSocket(n),
		Kubeconfig: c.KubeconfigPath(), CACert: filepath.Join(c.Dir, "pki", "ca.crt"),
		ClusterDNS: clusterDNSIP, ClusterCIDR: clusterCIDR, CNIBinDir: cniBinDir,
		PauseImage: PauseImage, Taint: v1alpha1.TaintAgentNotReady, Prefix: c.State.Prefix,
		Bins: bins,
	}
	for _, d := range []string{"cni", "cni-leases", "pod-logs", "kubelet", "containerd", "runc", "var-log-containers", "var-lib-palisade"} {
		if err := os.MkdirAll(filepath.Join(f.Dir, d), 0o755); err != nil {
			return f, err
		}
	}
	files := map[string]string{
		"containerd.toml":          containerdConfig,
		"cni/10-palisade.conflist": cniConfig,
		"kubelet.yaml":             kubeletConfig,
		"kube-proxy.yaml":          kubeProxyConfig,
		"node.sh":                  nodeScript,
		// Pods with dnsPolicy Default (CoreDNS) get this: the nodes have no
		// way out of the machine, so there is no upstream resolver.
		"resolv.conf": "nameserver 127.0.0.1\n",
	}
	for name, text := range files {
		t, err := template.New(name).Parse(text)
		if err != nil {
			return f, fmt.Errorf("template %s: %w", name, err)
		}
		var b strings.Builder
		if err := t.Execute(&b, f); err != nil {
			return f, fmt.Errorf("render %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(f.Dir, name), []byte(b.String()), 0o644); err != nil {
			return f, err
		}
	}
	return f, nil
}
