// Package observe turns the agents' NodeFlowReports into the observed part
// of a ServiceIntent's status: which declared callers really call, which
// undeclared ones were turned away (or audited), which declared ones are
// unused, and on how many nodes the intent's current generation is in force.
//
// It is pure: the reconciler reads everything from its cache and passes it
// in, together with the time, so that every rule here is table-tested.
package observe

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// Defaults of Options.
const (
	// DefaultUnusedCallerWindow is how long a declared caller may go unseen
	// before it is listed as unused.
	DefaultUnusedCallerWindow = 24 * time.Hour
	// StaleIntervals is how many of its report intervals a report may be
	// old before its node counts as not reporting.
	StaleIntervals = v1alpha1.ReportStaleIntervals
	// MaxUndeclaredCallers bounds status.undeclaredCallers (the API allows 20).
	MaxUndeclaredCallers = 20
)

// Options tune the computation.
type Options struct {
	// UnusedCallerWindow: a declared caller not seen for this long is unused;
	// flows last seen before it are ignored. Zero means the default.
	UnusedCallerWindow time.Duration
}

func (o Options) window() time.Duration {
	if o.UnusedCallerWindow <= 0 {
		return DefaultUnusedCallerWindow
	}
	return o.UnusedCallerWindow
}

// Input is what the reconciler knows about one intent.
type Input struct {
	// Intent is the intent as read; its status is the previous status.
	Intent *v1alpha1.ServiceIntent
	// Callers are the resolved callers, in spec order (compiler.Input.Callers).
	Callers []compiler.Caller
	// CallerStatus is the callers' resolution, in spec order; Compute adds
	// the observed fields to copies of them.
	CallerStatus []v1alpha1.CallerStatus
	// TargetPods are the pods the target selects.
	TargetPods []corev1.Pod
	// NamespaceLabels are the labels of every namespace, by name, for
	// callers with a namespaceSelector.
	NamespaceLabels map[string]labels.Set
	// Reports are the NodeFlowReports that may concern the intent (at least
	// every report that names it).
	Reports []v1alpha1.NodeFlowReport
	// Now is the time of the computation.
	Now time.Time
}

// Result is the observed part of the status.
type Result struct {
	Callers                []v1alpha1.CallerStatus
	ObservedCallers        string
	Denied                 int64
	UndeclaredCallers      []v1alpha1.UndeclaredCaller
	UndeclaredCallersTotal int32
	UnusedCallers          []string
	Enforcement            *v1alpha1.EnforcementStatus
	// Enforced and TrafficConforms are the conditions, without
	// observedGeneration (the caller sets it with the others).
	Enforced        metav1.Condition
	TrafficConforms metav1.Condition
	// NewUndeclared are the undeclared callers of the result that the
	// previous status did not list: candidates for a warning event.
	NewUndeclared []v1alpha1.UndeclaredCaller
	// RecheckAfter is when the result changes by time alone (a report goes
	// stale, a caller becomes unused), with no event to trigger a
	// reconcile; zero when nothing is due.
	RecheckAfter time.Duration
}

// Compute derives the observed status of the intent from the reports.
func Compute(in Input, opts Options) Result {
	now := in.Now.Truncate(time.Second)
	fresh, staleAt := freshReports(in.Reports, now)
	var res Result
	obs := observeFlows(in, fresh, now.Add(-opts.window()))
	res.Callers, res.UnusedCallers = callerStatus(in, obs, now, opts.window())
	observed := 0
	for _, c := range res.Callers {
		if c.Observed {
			observed++
		}
	}
	res.ObservedCallers = ratio(observed, len(res.Callers))
	res.UndeclaredCallers, res.UndeclaredCallersTotal, res.Denied = obs.top(MaxUndeclaredCallers)
	res.NewUndeclared = newUndeclared(in.Intent.Status.UndeclaredCallers, res.UndeclaredCallers)
	res.Enforcement, res.Enforced = enforcement(in, fresh)
	res.TrafficConforms = trafficConforms(res.UndeclaredCallers, int(res.UndeclaredCallersTotal), len(fresh))
	res.RecheckAfter = recheckAfter(now, staleAt, res.Callers, in.Intent.CreationTimestamp.Time, opts.window())
	return res
}

// freshReports keeps the reports written within StaleIntervals of their
// interval, and returns when the first of them goes stale.
func freshReports(reports []v1alpha1.NodeFlowReport, now time.Time) ([]*v1alpha1.NodeFlowReport, time.Time) {
	var out []*v1alpha1.NodeFlowReport
	var first time.Time
	for i := range reports {
		r := &reports[i]
		interval := time.Duration(max(r.Spec.IntervalSeconds, 1)) * time.Second
		staleAt := r.Spec.ReportedAt.Add(StaleIntervals * interval)
		if now.After(staleAt) {
			continue
		}
		out = append(out, r)
		if first.IsZero() || staleAt.Before(first) {
			first = staleAt
		}
	}
	return out, first
}

// recheckAfter returns how long until a fresh report goes stale or a caller
// crosses the unused window, whichever comes first.
func recheckAfter(now, staleAt time.Time, callers []v1alpha1.CallerStatus, created time.Time, window time.Duration) time.Duration {
	next := staleAt
	for _, c := range callers {
		since := created
		if c.LastSeen != nil {
			since = c.LastSeen.Time
		}
		if at := since.Add(window); at.After(now) && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	if next.IsZero() {
		return 0
	}
	// One second past the moment, so that the check sees it crossed.
	return max(next.Sub(now), 0) + time.Second
}

func ratio(n, m int) string {
	return strconv.Itoa(n) + "/" + strconv.Itoa(m)
}
