package localcluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/internal/netns"
)

const (
	// NetnsAnnotation on a Pod names its network namespace.
	NetnsAnnotation = "local-cluster.palisade.dev/netns"
	// DNSPort is what cluster-dns serves on.
	DNSPort = 53
)

// PodSpec is a pod to create.
type PodSpec struct {
	Namespace, Name string
	// Node is the node name; empty picks the first node.
	Node   string
	Labels map[string]string
	Ports  []corev1.ContainerPort
	// DNS serves DNS on port 53 (UDP and TCP) instead of plain answers.
	DNS bool
}

// Pod is a running pod.
type Pod struct {
	Namespace, Name, Node, Netns string
	IP                           netip.Addr
	Labels                       map[string]string
	Ports                        []corev1.ContainerPort
	// DNS is set for DNS servers (cluster-dns): probes send DNS queries.
	DNS bool
}

// Key is "namespace/name".
func (p Pod) Key() string { return p.Namespace + "/" + p.Name }

func hostVethName(namespace, name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(namespace + "/" + name))
	return fmt.Sprintf("pv%08x", h.Sum32())
}

func (c *Cluster) podProcess(namespace, name string) string { return "pod-" + namespace + "-" + name }

// EnsureNamespace creates a namespace with labels (merging labels into an
// existing one).
func (c *Cluster) EnsureNamespace(ctx context.Context, name string, labels map[string]string) error {
	ns := &corev1.Namespace{}
	err := c.Client.Get(ctx, client.ObjectKey{Name: name}, ns)
	if apierrors.IsNotFound(err) {
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if len(labels) == 0 {
		return nil
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	for k, v := range labels {
		ns.Labels[k] = v
	}
	return c.Client.Update(ctx, ns)
}

// CreatePod creates the Pod object, its network namespace and address, marks
// it Running with its IP (the kubelet's part) and starts its server.
func (c *Cluster) CreatePod(ctx context.Context, spec PodSpec) (*Pod, error) {
	if spec.Node == "" {
		spec.Node = c.State.Nodes[0].Name
	}
	node, ok := c.Node(spec.Node)
	if !ok {
		return nil, fmt.Errorf("no node %q", spec.Node)
	}
	if err := c.EnsureNamespace(ctx, spec.Namespace, nil); err != nil {
		return nil, err
	}
	pod := &Pod{
		Namespace: spec.Namespace, Name: spec.Name, Node: node.Name,
		Netns: c.PodNetns(spec.Namespace, spec.Name), Labels: spec.Labels, Ports: spec.Ports, DNS: spec.DNS,
	}
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: spec.Namespace, Name: spec.Name, Labels: spec.Labels,
			Annotations: map[string]string{NetnsAnnotation: pod.Netns},
		},
		Spec: corev1.PodSpec{
			NodeName:                      node.Name,
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name:  "podserver",
				Image: "palisade.dev/podserver:local",
				Ports: spec.Ports,
			}},
		},
	}
	c.podMu.Lock()
	ip, err := c.allocateIP(ctx, node)
	if err == nil {
		err = c.Client.Create(ctx, obj)
		if err != nil {
			err = fmt.Errorf("create pod %s: %w", pod.Key(), err)
		}
	}
	if err == nil {
		// Claim the address in the API right away so a concurrent create
		// does not pick it too.
		obj.Status = corev1.PodStatus{Phase: corev1.PodPending, PodIP: ip.String(), PodIPs: []corev1.PodIP{{IP: ip.String()}}}
		err = c.Client.Status().Update(ctx, obj)
	}
	c.podMu.Unlock()
	if err != nil {
		return nil, err
	}
	pod.IP = ip
	if err := c.wirePod(node, pod); err != nil {
		return nil, errors.Join(err, c.DeletePod(context.Background(), spec.Namespace, spec.Name))
	}
	if err := c.startPodServer(pod, spec); err != nil {
		return nil, errors.Join(err, c.DeletePod(context.Background(), spec.Namespace, spec.Name))
	}
	now := metav1.Now()
	ready := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now}
	}
	obj.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    node.IP,
		HostIPs:   []corev1.HostIP{{IP: node.IP}},
		PodIP:     ip.String(),
		PodIPs:    []corev1.PodIP{{IP: ip.String()}},
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			ready(corev1.PodScheduled), ready(corev1.PodInitialized), ready(corev1.ContainersReady), ready(corev1.PodReady),
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "podserver", Ready: true, Image: "palisade.dev/podserver:local", ImageID: "local",
			Started: new(bool), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
	*obj.Status.ContainerStatuses[0].Started = true
	if err := c.Client.Status().Update(ctx, obj); err != nil {
		return nil, errors.Join(fmt.Errorf("pod %s status: %w", pod.Key(), err), c.DeletePod(context.Background(), spec.Namespace, spec.Name))
	}
	return pod, nil
}

// allocateIP picks the lowest free address of the node's pod CIDR, judged by
// the pods the API server knows on that node.
func (c *Cluster) allocateIP(ctx context.Context, node NodeState) (netip.Addr, error) {
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods); err != nil {
		return netip.Addr{}, fmt.Errorf("list pods: %w", err)
	}
	used := map[netip.Addr]bool{}
	for _, p := range pods.Items {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil && p.Spec.NodeName == node.Name {
			used[ip] = true
		}
	}
	prefix := netip.MustParsePrefix(node.PodCIDR)
	for ip := prefix.Addr().Next().Next(); prefix.Contains(ip); ip = ip.Next() {
		if !used[ip] && ip.As4()[3] != 255 {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("pod CIDR %s of %s is full", node.PodCIDR, node.Name)
}

// wirePod creates the pod's namespace and its routed veth to the node.
func (c *Cluster) wirePod(node NodeState, pod *Pod) error {
	if err := c.recordNetns(pod.Netns); err != nil {
		return err
	}
	podNS, err := netns.Create(pod.Netns)
	if err != nil {
		return err
	}
	defer func() { _ = podNS.Close() }()
	nodeNS, err := netns.Open(node.Netns)
	if err != nil {
		return err
	}
	defer func() { _ = nodeNS.Close() }()
	if err := netns.AddPod(nodeNS, podNS, hostVethName(pod.Namespace, pod.Name), pod.IP); err != nil {
		return fmt.Errorf("wire pod %s: %w", pod.Key(), err)
	}
	return nil
}

func (c *Cluster) startPodServer(pod *Pod, spec PodSpec) error {
	bin := filepath.Join(c.State.BinDir, "podserver")
	ready := filepath.Join(c.Dir, "pids", c.podProcess(pod.Namespace, pod.Name)+".ready")
	_ = os.Remove(ready)
	args := []string{bin, "serve", "--name=" + pod.Key(), "--ready-file=" + ready}
	byProto := map[corev1.Protocol][]string{}
	for _, p := range spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		port := strconv.Itoa(int(p.ContainerPort))
		if !slices.Contains(byProto[proto], port) {
			byProto[proto] = append(byProto[proto], port)
		}
	}
	if spec.DNS {
		args = append(args, "--dns-port="+strconv.Itoa(DNSPort))
	} else {
		for proto, flag := range map[corev1.Protocol]string{corev1.ProtocolTCP: "--tcp", corev1.ProtocolUDP: "--udp", corev1.ProtocolSCTP: "--sctp"} {
			if ports := byProto[proto]; len(ports) > 0 {
				args = append(args, flag+"="+strings.Join(ports, ","))
			}
		}
	}
	name := c.podProcess(pod.Namespace, pod.Name)
	if _, err := c.startProcess(name, pod.Netns, args...); err != nil {
		return err
	}
	return waitFor(10*time.Second, "the server of "+pod.Key(), func() error {
		if _, err := os.Stat(ready); err != nil {
			if !c.processRunning(name) {
				return c.exited(name)
			}
			return err
		}
		return nil
	})
}

// DeletePod stops a pod's server, removes its namespace (and with it the
// veth and route) and deletes the Pod object at once (no kubelet confirms).
func (c *Cluster) DeletePod(ctx context.Context, namespace, name string) error {
	ns := c.PodNetns(namespace, name)
	var errs []error
	errs = append(errs, c.stopProcess(c.podProcess(namespace, name), 2*time.Second))
	_ = os.Remove(filepath.Join(c.Dir, "pids", c.podProcess(namespace, name)+".ready"))
	killNetnsProcesses(ns)
	errs = append(errs, netns.Delete(ns), c.forgetNetns(ns))
	obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := c.Client.Delete(ctx, obj, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete pod %s/%s: %w", namespace, name, err))
	}
	return errors.Join(errs...)
}

// Pods lists the pods the harness runs, from the API server.
func (c *Cluster) Pods(ctx context.Context) ([]Pod, error) {
	var list corev1.PodList
	if err := c.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	var out []Pod
	for _, p := range list.Items {
		ns, ok := p.Annotations[NetnsAnnotation]
		if !ok {
			continue
		}
		ip, _ := netip.ParseAddr(p.Status.PodIP)
		var ports []corev1.ContainerPort
		for _, ctr := range p.Spec.Containers {
			ports = append(ports, ctr.Ports...)
		}
		out = append(out, Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, Netns: ns, IP: ip, Labels: p.Labels, Ports: ports,
			DNS: p.Labels["k8s-app"] == "kube-dns"})
	}
	slices.SortFunc(out, func(a, b Pod) int { return strings.Compare(a.Key(), b.Key()) })
	return out, nil
}
