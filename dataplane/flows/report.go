package flows

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-dev/palisade/api/v1alpha1"
	"github.com/palisade-dev/palisade/internal/textutil"
)

// Bounds of one NodeFlowReport. etcd refuses objects over 1.5 MiB; a
// report stays well below whatever its flows' labels and names hold.
const (
	// MaxReportFlows is the API's bound on spec.flows.
	MaxReportFlows = 500
	// MaxReportFlowBytes bounds the JSON size of spec.flows.
	MaxReportFlowBytes = 1 << 20
	// MaxReportIntents is the API's bound on spec.intents.
	MaxReportIntents = 2000
	maxRecordNames   = 16
)

// ReportInput is what a node's report is built from.
type ReportInput struct {
	NodeName    string
	Now         time.Time
	WindowStart time.Time
	Interval    time.Duration
	// Entries are the aggregator's, in any order.
	Entries []Entry
	// Dropped counts observations lost since the agent started.
	Dropped int64
	// Intents are the intents programmed on the node.
	Intents []v1alpha1.ProgrammedIntent
}

// BuildReport returns the report's spec: the flows with the most
// connections first (up to MaxReportFlows and MaxReportFlowBytes; the rest,
// and flows of protocols a FlowRecord cannot name such as ICMP, counted in
// FlowsTruncated), and the intents sorted by namespace and name.
func BuildReport(in ReportInput) v1alpha1.NodeFlowReportSpec {
	spec := v1alpha1.NodeFlowReportSpec{
		NodeName:            in.NodeName,
		WindowStart:         metav1.NewTime(in.WindowStart),
		ReportedAt:          metav1.NewTime(in.Now),
		IntervalSeconds:     int32(max(1, in.Interval.Round(time.Second)/time.Second)),
		ObservationsDropped: in.Dropped,
	}
	entries := slices.Clone(in.Entries)
	slices.SortFunc(entries, compareEntries)
	budget := MaxReportFlowBytes
	for i := range entries {
		rec, ok := record(&entries[i])
		if !ok || len(spec.Flows) == MaxReportFlows {
			spec.FlowsTruncated++
			continue
		}
		b, err := json.Marshal(rec)
		if err != nil || len(b) > budget {
			// Once the budget is spent, only smaller records still fit; keep
			// the order honest and stop adding.
			budget = 0
			spec.FlowsTruncated++
			continue
		}
		budget -= len(b) + 1
		spec.Flows = append(spec.Flows, rec)
	}
	intents := slices.Clone(in.Intents)
	slices.SortFunc(intents, func(a, b v1alpha1.ProgrammedIntent) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	if len(intents) > MaxReportIntents {
		intents = intents[:MaxReportIntents]
	}
	if len(intents) > 0 {
		spec.Intents = intents
	}
	return spec
}

// SameContent tells whether two reports say the same, ignoring when they
// were written and the window's sliding start.
func SameContent(a, b *v1alpha1.NodeFlowReportSpec) bool {
	x, y := a.DeepCopy(), b.DeepCopy()
	x.ReportedAt, y.ReportedAt = metav1.Time{}, metav1.Time{}
	x.WindowStart, y.WindowStart = metav1.Time{}, metav1.Time{}
	return apiequality.Semantic.DeepEqual(x, y)
}

// compareEntries orders by count (descending), then last seen (most recent
// first), then the key, so that equal inputs give equal reports.
func compareEntries(a, b Entry) int {
	if c := cmp.Compare(b.Count, a.Count); c != 0 {
		return c
	}
	if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
		return c
	}
	return cmp.Compare(keyString(a.Key), keyString(b.Key))
}

func keyString(k Key) string {
	id := func(i Identity) string {
		return i.Namespace + "/" + i.WorkloadKind + "/" + i.WorkloadName + "/" + i.IP.String()
	}
	return strings.Join([]string{id(k.Source), id(k.Destination), string(k.Direction), string(k.Verdict),
		strconv.Itoa(int(k.Protocol)), strconv.Itoa(int(k.Port))}, "|")
}

// ProtocolName names an IANA protocol number as a FlowRecord does; false
// for protocols it has no name for.
func ProtocolName(p uint8) (v1alpha1.Protocol, bool) {
	switch p {
	case 6:
		return "TCP", true
	case 17:
		return "UDP", true
	case 132:
		return "SCTP", true
	}
	return "", false
}

func record(e *Entry) (v1alpha1.FlowRecord, bool) {
	proto, ok := ProtocolName(e.Key.Protocol)
	if !ok {
		return v1alpha1.FlowRecord{}, false
	}
	return v1alpha1.FlowRecord{
		Source:      endpoint(e.Source),
		Destination: endpoint(e.Destination),
		Direction:   e.Key.Direction,
		Protocol:    proto,
		Port:        int32(e.Key.Port),
		Verdict:     e.Key.Verdict,
		Policies:    bounded(e.Policies, maxRecordNames, 317),
		Intents:     bounded(e.Intents, maxRecordNames, 127),
		Count:       e.Count,
		FirstSeen:   metav1.NewTime(e.FirstSeen),
		LastSeen:    metav1.NewTime(e.LastSeen),
	}, true
}

func endpoint(e Endpoint) v1alpha1.FlowEndpoint {
	out := v1alpha1.FlowEndpoint{
		Namespace:    textutil.Truncate(e.Namespace, 63),
		WorkloadKind: textutil.Truncate(e.WorkloadKind, 32),
		WorkloadName: textutil.Truncate(e.WorkloadName, 253),
		Pod:          textutil.Truncate(e.Pod, 253),
		Labels:       IdentityLabels(e.Labels),
	}
	if e.IP.IsValid() {
		out.IP = e.IP.String()
	}
	return out
}

// bounded keeps at most n items, each cut to length bytes.
func bounded(items []string, n, length int) []string {
	if len(items) == 0 {
		return nil
	}
	out := make([]string, 0, min(n, len(items)))
	for _, s := range items {
		if len(out) == n {
			break
		}
		out = append(out, textutil.Truncate(s, length))
	}
	return out
}
