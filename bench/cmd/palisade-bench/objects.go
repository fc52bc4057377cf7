package main

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/synth"
)

// The API objects of a synthetic cluster (bench/synth's shape: pods spread
// over namespaces, apps and 20 nodes; intents protecting one app and
// admitting two app callers, every tenth one also an address range), for
// the measurements that run on a real API server.

// apiPod is synthetic pod i as the API server stores it: scheduled, with an
// address in its status and a named container port, but no network
// namespace (nothing connects to it).
func apiPod(s synth.Shape, i int) (*corev1.Pod, corev1.PodStatus) {
	p := s.NewPod(i)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels},
		Spec: corev1.PodSpec{
			NodeName:                      p.NodeName,
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "app", Image: "palisade.dev/synthetic:bench",
				Ports: []corev1.ContainerPort{{Name: synth.NamedPort, ContainerPort: synth.ServicePort, Protocol: corev1.ProtocolTCP}},
			}},
		},
	}
	ip := p.IPs[0].String()
	status := corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	}
	return pod, status
}

// createPods creates pods [from, to) of the shape with their status (two
// writes each, as a scheduler and kubelet would make).
func createPods(ctx context.Context, cs kubernetes.Interface, s synth.Shape, from, to int) error {
	return parallel(ctx, to-from, 16, func(ctx context.Context, k int) error {
		pod, status := apiPod(s, from+k)
		created, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			created, err = cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		}
		if err != nil {
			return fmt.Errorf("create pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		created.Status = status
		if _, err := cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("pod %s/%s status: %w", pod.Namespace, pod.Name, err)
		}
		return nil
	})
}

// createNamespaces creates the shape's namespaces.
func createNamespaces(ctx context.Context, cs kubernetes.Interface, n int) error {
	return parallel(ctx, n, 8, func(ctx context.Context, i int) error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: synth.NamespaceName(i)}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns.Name, err)
		}
		return nil
	})
}

// apiIntent is intent j of the shape as a ServiceIntent: the same target,
// callers and ports as synth.Shape.Intent, which is its resolved form.
func apiIntent(s synth.Shape, j int) *v1alpha1.ServiceIntent {
	nss := s.Namespaces
	apps := s.AppsPerNamespace
	ns := j % nss
	app := (j / nss) % apps
	other := (ns + 1) % nss
	sel := func(k, v string) *v1alpha1.LabelSelector {
		return &v1alpha1.LabelSelector{MatchLabels: map[string]v1alpha1.LabelValue{k: v1alpha1.LabelValue(v)}}
	}
	port := intstr.FromInt32(synth.ServicePort)
	if j%3 == 2 {
		port = intstr.FromString(synth.NamedPort)
	}
	ports := []v1alpha1.IntentPort{{Port: port, Protocol: "TCP"}}
	si := &v1alpha1.ServiceIntent{
		ObjectMeta: metav1.ObjectMeta{Namespace: synth.NamespaceName(ns), Name: intentName(j)},
		Spec: v1alpha1.ServiceIntentSpec{
			Target: v1alpha1.Target{PodSelector: sel("app", synth.AppName(app))},
			Callers: []v1alpha1.Caller{
				{Name: "local", PodSelector: sel("app", synth.AppName((app+1)%apps)), Ports: ports},
				{Name: "remote", PodSelector: sel("app", synth.AppName((app+2)%apps)),
					NamespaceSelector: sel("kubernetes.io/metadata.name", synth.NamespaceName(other)), Ports: ports},
			},
		},
	}
	if j%10 == 0 {
		si.Spec.Callers = append(si.Spec.Callers, v1alpha1.Caller{Name: "partners",
			IPBlock: &v1alpha1.IPBlock{CIDR: v1alpha1.CIDR(fmt.Sprintf("172.%d.%d.0/24", 16+j%16, (j/16)%256))},
			Ports:   []v1alpha1.IntentPort{{Port: intstr.FromInt32(443), Protocol: "TCP"}}})
	}
	return si
}

func intentName(j int) string { return fmt.Sprintf("svc-%05d", j) }

// createIntents creates intents [from, to) of the shape.
func createIntents(ctx context.Context, cl client.Client, s synth.Shape, from, to int) error {
	return parallel(ctx, to-from, 16, func(ctx context.Context, k int) error {
		si := apiIntent(s, from+k)
		if err := cl.Create(ctx, si); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create intent %s/%s: %w", si.Namespace, si.Name, err)
		}
		return nil
	})
}
