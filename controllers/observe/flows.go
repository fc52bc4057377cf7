package observe

import (
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

// observation is what the fresh reports say about one intent.
type observation struct {
	// connections and lastSeen are per declared caller, in spec order.
	connections []int64
	lastSeen    []time.Time
	// undeclared aggregates flows whose source no caller allows, over nodes.
	undeclared map[undeclaredKey]*v1alpha1.UndeclaredCaller
}

// undeclaredKey identifies an undeclared caller: its identity (workload for
// pods, address otherwise), the port and protocol it tried, and the verdict.
type undeclaredKey struct {
	identity string
	port     int32
	protocol v1alpha1.Protocol
	verdict  v1alpha1.FlowVerdict
}

func keyOf(u *v1alpha1.UndeclaredCaller) undeclaredKey {
	return undeclaredKey{identity: identity(u.Source), port: u.Port, protocol: u.Protocol, verdict: u.Verdict}
}

// identity names a flow endpoint as an SRE would: namespace/Kind/name for a
// pod (so that every replica of a Deployment is one caller), the address
// for anything else.
func identity(e v1alpha1.FlowEndpoint) string {
	if isPod(e) {
		return e.Namespace + "/" + e.WorkloadKind + "/" + e.WorkloadName
	}
	return e.IP
}

// isPod tells pod endpoints (which have a namespace) from bare addresses.
func isPod(e v1alpha1.FlowEndpoint) bool { return e.Namespace != "" }

// observeFlows attributes the fresh reports' flows to the intent: flows
// into the target (direction Ingress) that name the intent among their
// deciders. A flow whose source a declared caller allows counts for the
// first such caller in spec order (so a caller that only repeats an earlier
// one shows up as unused: least privilege) when it was allowed; a flow that
// no caller allows is an undeclared caller, whatever its verdict.
//
// Two cases are deliberately neither: an Allowed flow that names the intent
// but matches no caller (the intent's own policy allowed it, so it is
// declared; our matching only lacks what the kernel knew, e.g. a label cut
// from the report), and a Dropped or Audited flow that a caller allows (the
// node had not programmed that caller yet, or a named port resolved to
// another number there): neither is a connection nor an undeclared caller.
func observeFlows(in Input, reports []*v1alpha1.NodeFlowReport, since time.Time) *observation {
	obs := &observation{
		connections: make([]int64, len(in.Callers)),
		lastSeen:    make([]time.Time, len(in.Callers)),
		undeclared:  map[undeclaredKey]*v1alpha1.UndeclaredCaller{},
	}
	key := in.Intent.Namespace + "/" + in.Intent.Name
	m := newMatcher(in)
	targets := targetPodNames(in)
	for _, r := range reports {
		for i := range r.Spec.Flows {
			f := &r.Spec.Flows[i]
			if f.LastSeen.Time.Before(since) {
				continue
			}
			switch {
			case f.Direction == v1alpha1.FlowIngress && slices.Contains(f.Intents, key):
			case f.Direction == v1alpha1.FlowEgress && f.Verdict != v1alpha1.VerdictAllowed &&
				f.Destination.Namespace == in.Intent.Namespace && targets[f.Destination.Pod]:
				// The caller's own egress policy (a zero-trust baseline,
				// typically) turned it away before it reached the target:
				// still a caller of the target that nothing declares.
			default:
				continue
			}
			caller := m.firstCaller(f)
			switch {
			case caller >= 0 && f.Verdict == v1alpha1.VerdictAllowed:
				obs.connections[caller] += f.Count
				if f.LastSeen.After(obs.lastSeen[caller]) {
					obs.lastSeen[caller] = f.LastSeen.Time
				}
			case caller < 0 && f.Verdict != v1alpha1.VerdictAllowed:
				obs.addUndeclared(f)
			}
		}
	}
	return obs
}

// targetPodNames returns the names of the target's pods (all in the
// intent's namespace).
func targetPodNames(in Input) map[string]bool {
	out := make(map[string]bool, len(in.TargetPods))
	for i := range in.TargetPods {
		out[in.TargetPods[i].Name] = true
	}
	return out
}

// addUndeclared folds one flow into its undeclared caller: counts add up,
// first and last seen widen, and the source shown is the latest one seen.
func (o *observation) addUndeclared(f *v1alpha1.FlowRecord) {
	u := &v1alpha1.UndeclaredCaller{Source: f.Source, Protocol: f.Protocol, Port: f.Port, Verdict: f.Verdict,
		Count: f.Count, FirstSeen: f.FirstSeen, LastSeen: f.LastSeen}
	if u.Protocol == "" {
		u.Protocol = "TCP"
	}
	k := keyOf(u)
	have, ok := o.undeclared[k]
	if !ok {
		u.Source = *f.Source.DeepCopy()
		o.undeclared[k] = u
		return
	}
	have.Count += f.Count
	if f.FirstSeen.Before(&have.FirstSeen) {
		have.FirstSeen = f.FirstSeen
	}
	if have.LastSeen.Before(&f.LastSeen) {
		have.LastSeen = f.LastSeen
		have.Source = *f.Source.DeepCopy()
	}
}

// top returns the undeclared callers with the most observations first (ties:
// latest first, then by identity, so the order is stable), at most n of
// them, how many there are, and the observations of those that were turned
// away (Dropped) or would have been (Audited).
func (o *observation) top(n int) ([]v1alpha1.UndeclaredCaller, int32, int64) {
	all := make([]v1alpha1.UndeclaredCaller, 0, len(o.undeclared))
	var denied int64
	for _, u := range o.undeclared {
		all = append(all, *u)
		if u.Verdict != v1alpha1.VerdictAllowed {
			denied += u.Count
		}
	}
	slices.SortFunc(all, func(a, b v1alpha1.UndeclaredCaller) int {
		switch {
		case a.Count != b.Count:
			return compare(b.Count, a.Count)
		case !a.LastSeen.Equal(&b.LastSeen):
			return b.LastSeen.Compare(a.LastSeen.Time)
		}
		ka, kb := keyOf(&a), keyOf(&b)
		return strings.Compare(ka.String(), kb.String())
	})
	total := int32(min(len(all), 1<<31-1))
	if len(all) > n {
		all = all[:n]
	}
	if len(all) == 0 {
		all = nil
	}
	return all, total, denied
}

func (k undeclaredKey) String() string {
	return k.identity + " " + portString(k.port, k.protocol) + " " + string(k.verdict)
}

func portString(port int32, protocol v1alpha1.Protocol) string {
	return itoa32(port) + "/" + string(protocol)
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// newUndeclared returns the callers of now that before did not list.
func newUndeclared(before, now []v1alpha1.UndeclaredCaller) []v1alpha1.UndeclaredCaller {
	known := make(map[undeclaredKey]bool, len(before))
	for i := range before {
		known[keyOf(&before[i])] = true
	}
	var out []v1alpha1.UndeclaredCaller
	for i := range now {
		if !known[keyOf(&now[i])] {
			out = append(out, now[i])
		}
	}
	return out
}

// maxTime returns the later of a previous lastSeen and a new one.
func maxTime(prev *metav1.Time, seen time.Time) *metav1.Time {
	if seen.IsZero() {
		return prev.DeepCopy()
	}
	if prev != nil && !prev.Time.Before(seen) {
		return prev.DeepCopy()
	}
	t := metav1.NewTime(seen)
	return &t
}
