package flows

import (
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Workload kinds an Endpoint names. Pods without a known owner are named
// by themselves (KindPod).
const (
	KindDeployment  = "Deployment"
	KindReplicaSet  = "ReplicaSet"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindJob         = "Job"
	KindPod         = "Pod"
)

// MaxIdentityLabels bounds the labels kept per endpoint (FlowEndpoint allows
// 16): a pod with hundreds of labels must not blow up a report.
const MaxIdentityLabels = 16

// perPodLabels differ between pods of one workload; an identity built from
// them would split one workload into one identity per pod (or per rollout),
// so they are dropped:
//   - pod-template-hash: Deployment's ReplicaSet hash.
//   - controller-revision-hash: StatefulSet and DaemonSet revision.
//   - statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index:
//     the StatefulSet ordinal.
//   - batch.kubernetes.io/controller-uid, controller-uid: the Job's UID.
//   - batch.kubernetes.io/job-name, job-name: kept out because the Job's
//     name is the workload name already, and a CronJob makes a new one per run.
//   - batch.kubernetes.io/job-completion-index: the indexed Job's index.
var perPodLabels = map[string]bool{
	appsv1.DefaultDeploymentUniqueLabelKey:     true, // pod-template-hash
	appsv1.ControllerRevisionHashLabelKey:      true,
	appsv1.StatefulSetPodNameLabel:             true,
	appsv1.PodIndexLabel:                       true,
	"batch.kubernetes.io/controller-uid":       true,
	"controller-uid":                           true,
	"batch.kubernetes.io/job-name":             true,
	"job-name":                                 true,
	"batch.kubernetes.io/job-completion-index": true,
}

// IdentityLabels returns the labels that identify a pod's workload: its
// labels without the per-pod ones, at most MaxIdentityLabels (the first by
// key). nil when none remain.
func IdentityLabels(labels map[string]string) map[string]string {
	var keys []string
	for k := range labels {
		if !perPodLabels[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	if len(keys) > MaxIdentityLabels {
		keys = keys[:MaxIdentityLabels]
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = labels[k]
	}
	return out
}

// Workload names a pod's top owner from its owner references, without
// looking the owners up (the agent caches no ReplicaSets or Jobs for this):
//   - a ReplicaSet whose name ends in "-<pod-template-hash>" is a
//     Deployment's: the Deployment is the ReplicaSet's name without the suffix;
//   - a ReplicaSet without that label is a bare ReplicaSet;
//   - StatefulSet, DaemonSet and Job owners name themselves (a CronJob's
//     Jobs are named per run, and are reported as Jobs);
//   - no controller owner (or one of another kind): the pod itself.
func Workload(podName string, labels map[string]string, owners []metav1.OwnerReference) (kind, name string) {
	owner := controllerOf(owners)
	if owner == nil {
		return KindPod, podName
	}
	switch owner.Kind {
	case KindReplicaSet:
		if hash := labels[appsv1.DefaultDeploymentUniqueLabelKey]; hash != "" {
			if dep, ok := strings.CutSuffix(owner.Name, "-"+hash); ok && dep != "" {
				return KindDeployment, dep
			}
		}
		return KindReplicaSet, owner.Name
	case KindStatefulSet, KindDaemonSet, KindJob:
		return owner.Kind, owner.Name
	}
	return KindPod, podName
}

// controllerOf returns the managing owner: the one marked controller, else
// the only owner.
func controllerOf(owners []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range owners {
		if c := owners[i].Controller; c != nil && *c {
			return &owners[i]
		}
	}
	if len(owners) == 1 {
		return &owners[0]
	}
	return nil
}
