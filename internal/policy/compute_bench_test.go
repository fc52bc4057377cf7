package policy_test

import (
	"fmt"
	"testing"

	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/synth"
)

// BenchmarkCompute measures a full computation of one node's state, what the
// agent does on every sync, as the cluster grows in pods and in policies.
func BenchmarkCompute(b *testing.B) {
	for _, s := range []synth.Shape{
		{Pods: 1000, Intents: 100},
		{Pods: 1000, Intents: 1000},
		{Pods: 10000, Intents: 100},
		{Pods: 10000, Intents: 1000},
	} {
		c := synth.New(s)
		in := c.Input()
		b.Run(fmt.Sprintf("pods=%d/intents=%d", s.Pods, s.Intents), func(b *testing.B) {
			b.ReportAllocs()
			var st policy.State
			for b.Loop() {
				st = policy.Compute(in)
			}
			if len(st.Policies) == 0 {
				b.Fatal("no policy selects a local pod: the workload is wrong")
			}
		})
	}
}
