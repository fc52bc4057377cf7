package flows

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/api/v1alpha1"
)

func entry(src string, port uint16, count int64, last time.Time) Entry {
	s := Endpoint{IP: netip.MustParseAddr(src)}
	d := podEP("shop", KindDeployment, "web", "web-1", "10.0.0.1")
	f := Flow{Source: s, Destination: d, DestinationPort: port, Protocol: 6, Direction: v1alpha1.FlowIngress, Verdict: v1alpha1.VerdictDropped}
	return Entry{Key: KeyOf(&f), Source: s, Destination: d, Count: count, FirstSeen: t0, LastSeen: last,
		Policies: []string{"shop/web"}, Intents: []string{"shop/web"}}
}

func TestBuildReportOrdersByCount(t *testing.T) {
	entries := []Entry{
		entry("10.9.0.1", 80, 5, t0.Add(time.Second)),
		entry("10.9.0.2", 80, 50, t0.Add(time.Second)),
		entry("10.9.0.3", 80, 5, t0.Add(3*time.Second)), // same count, more recent: first
		entry("10.9.0.4", 80, 5, t0.Add(time.Second)),   // tie on both: by key
	}
	icmp := entry("10.9.0.5", 0, 100, t0)
	icmp.Key.Protocol = 1
	entries = append(entries, icmp)
	spec := BuildReport(ReportInput{NodeName: "n1", Now: t0.Add(time.Minute), WindowStart: t0, Interval: 10 * time.Second, Entries: entries, Dropped: 7,
		Intents: []v1alpha1.ProgrammedIntent{{Namespace: "b", Name: "x"}, {Namespace: "a", Name: "z"}, {Namespace: "a", Name: "y"}}})
	var got []string
	for _, f := range spec.Flows {
		got = append(got, fmt.Sprintf("%s:%d", f.Source.IP, f.Count))
	}
	if want := "10.9.0.2:50 10.9.0.3:5 10.9.0.1:5 10.9.0.4:5"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
	if spec.FlowsTruncated != 1 || spec.ObservationsDropped != 7 || spec.IntervalSeconds != 10 || spec.NodeName != "n1" {
		t.Errorf("truncated %d dropped %d interval %d node %q", spec.FlowsTruncated, spec.ObservationsDropped, spec.IntervalSeconds, spec.NodeName)
	}
	f := spec.Flows[0]
	if f.Protocol != "TCP" || f.Port != 80 || f.Verdict != v1alpha1.VerdictDropped || f.Destination.WorkloadName != "web" ||
		f.Destination.Pod != "web-1" || f.Destination.IP != "10.0.0.1" || f.Intents[0] != "shop/web" {
		t.Errorf("record %+v", f)
	}
	var intents []string
	for _, i := range spec.Intents {
		intents = append(intents, i.Namespace+"/"+i.Name)
	}
	if strings.Join(intents, " ") != "a/y a/z b/x" {
		t.Errorf("intents %v", intents)
	}
	// Equal inputs give equal reports whatever the entries' order.
	rev := make([]Entry, len(entries))
	for i := range entries {
		rev[len(entries)-1-i] = entries[i]
	}
	again := BuildReport(ReportInput{NodeName: "n1", Now: t0.Add(2 * time.Minute), WindowStart: t0.Add(time.Second), Interval: 10 * time.Second, Entries: rev, Dropped: 7,
		Intents: []v1alpha1.ProgrammedIntent{{Namespace: "a", Name: "y"}, {Namespace: "b", Name: "x"}, {Namespace: "a", Name: "z"}}})
	if !SameContent(&spec, &again) {
		t.Error("same entries in another order: content differs")
	}
	again.Flows[0].Count++
	if SameContent(&spec, &again) {
		t.Error("a changed count is not a change")
	}
}

func TestBuildReportTruncates(t *testing.T) {
	var entries []Entry
	for i := range 1200 {
		entries = append(entries, entry(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}).String(), 80, int64(i+1), t0))
	}
	spec := BuildReport(ReportInput{NodeName: "n1", Now: t0, WindowStart: t0, Interval: time.Second, Entries: entries})
	if len(spec.Flows) != MaxReportFlows || spec.FlowsTruncated != 1200-MaxReportFlows {
		t.Fatalf("%d flows, %d truncated", len(spec.Flows), spec.FlowsTruncated)
	}
	if spec.Flows[0].Count != 1200 || spec.Flows[MaxReportFlows-1].Count != 1200-MaxReportFlows+1 {
		t.Errorf("not the top flows: first %d last %d", spec.Flows[0].Count, spec.Flows[MaxReportFlows-1].Count)
	}
}

// TestBuildReportSizeBound fills every record with the most labels and the
// longest names an endpoint may carry: the report stays under etcd's
// 1.5 MiB, the records that do not fit counted as truncated.
func TestBuildReportSizeBound(t *testing.T) {
	labels := map[string]string{}
	for i := range 40 {
		labels[fmt.Sprintf("example.com/%s-%02d", strings.Repeat("k", 240), i)] = strings.Repeat("v", 63)
	}
	var entries []Entry
	for i := range 1000 {
		e := entry(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}).String(), 80, int64(i+1), t0)
		e.Source = Endpoint{IP: e.Source.IP, Namespace: strings.Repeat("n", 63), Pod: strings.Repeat("p", 253), WorkloadKind: KindPod,
			WorkloadName: strings.Repeat("w", 253), Labels: labels}
		e.Key.Source = IdentityOf(e.Source)
		e.Destination.Labels = labels
		for j := range 40 {
			e.Policies = append(e.Policies, fmt.Sprintf("%s/%s-%d", strings.Repeat("n", 63), strings.Repeat("p", 250), j))
		}
		entries = append(entries, e)
	}
	spec := BuildReport(ReportInput{NodeName: "n1", Now: t0, WindowStart: t0, Interval: time.Second, Entries: entries})
	b, err := json.Marshal(&v1alpha1.NodeFlowReport{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxReportFlowBytes+64<<10 {
		t.Errorf("report is %d bytes", len(b))
	}
	if len(spec.Flows) == 0 || int64(len(spec.Flows))+spec.FlowsTruncated != 1000 {
		t.Errorf("%d flows + %d truncated != 1000", len(spec.Flows), spec.FlowsTruncated)
	}
	for _, f := range spec.Flows {
		if len(f.Source.Labels) > MaxIdentityLabels || len(f.Policies) > 16 || len(f.Policies[0]) > 317 {
			t.Fatalf("record over the API bounds: %d labels, %d policies", len(f.Source.Labels), len(f.Policies))
		}
	}
}
