package flowlog_test

import (
	"context"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/dataplane/flowlog"
	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// TestReaderSurvivesOverruns floods a slow reader with a tiny buffer: the
// kernel drops what does not fit, the reader counts it as lost and goes on
// reading (a connection after the flood is still seen). The end-to-end
// decoding on both backends is in dataplane/kerneltest (TestFlowLog).
func TestReaderSurvivesOverruns(t *testing.T) {
	testenv.RequireRoot(t)
	node := netnstest.NewNodePrefixed(t, "pfa", "node-a", 1)
	a, b := node.AddPod(t, 10, false), node.AddPod(t, 11, false)
	a.Serve(t, []int{80}, nil)
	st := policy.Compute(policy.Input{
		NodeName:   "node-a",
		Namespaces: []policy.Namespace{pt.Namespace("x", nil)},
		Pods: []policy.Pod{
			{Namespace: "x", Name: "a", NodeName: "node-a", Labels: map[string]string{"app": "a"}, IPs: a.IPs()},
			{Namespace: "x", Name: "b", NodeName: "node-a", Labels: map[string]string{"app": "b"}, IPs: b.IPs()},
		},
		Policies: []*networkingv1.NetworkPolicy{pt.Policy("x", "web", pt.Selecting(map[string]string{"app": "a"}),
			pt.IngressRule(pt.Peers(pt.PodPeer(map[string]string{"app": "b"})), pt.TCP(80)))},
	})
	reader := flowlog.NewReader(flowlog.Config{NetNSFd: node.Fd, BufferSize: 4096})
	reader.Update(&st)
	var dropped, allowed int
	seen := make(chan struct{}, 1)
	netnstest.StartReader(t, reader, func(ev flowlog.Event) {
		switch ev.Verdict {
		case policy.LogDropped:
			dropped++
			time.Sleep(100 * time.Microsecond) // a slow consumer
		case policy.LogAllowed:
			allowed++
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	})
	// No practical limit: every flooded SYN is logged.
	b2 := nft.New(nft.WithNetNSFd(node.Fd), nft.WithRenderOptions(render.WithLog(render.LogOptions{Rate: 1_000_000, Burst: 1_000_000})))
	if _, err := b2.Sync(context.Background(), &st); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	if arrived, err := netnstest.FloodSYN(b.NS, a.NS, b.IP4, a.IP4, 81, n); err != nil || arrived != 0 {
		t.Fatalf("flood: %d arrived, %v", arrived, err)
	}
	ok, err := netnstest.Reach(netnstest.Probe{From: b.NS, To: a.NS, Src: b.IP4, Dst: a.IP4, Protocol: "TCP", Port: 80})
	if err != nil || !ok {
		t.Fatalf("allowed connection after the flood: %v, %v", ok, err)
	}
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatalf("the reader stopped reading after the flood: %+v", reader.Stats())
	}
	s := reader.Stats()
	t.Logf("stats %+v", s)
	// The flood logs n drops; the allowed connection logs its SYN once, or a
	// few times if the SYN was retransmitted (a retransmitted SYN is still
	// ct state new and passes the logging rule again).
	const maxAllowedLogs = 3
	if s.Lost == 0 || s.Received == 0 || s.Received+s.Lost > n+maxAllowedLogs {
		t.Errorf("stats %+v after a flood of %d into a 4 KiB buffer: want some lost, some received, no more than %d in all", s, n, n+maxAllowedLogs)
	}
}
