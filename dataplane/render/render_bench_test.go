package render_test

import (
	"fmt"
	"testing"

	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/synth"
)

// BenchmarkRender measures turning a computed state into the nftables
// ruleset, and printing it as nft text (what golden files and debugging use).
func BenchmarkRender(b *testing.B) {
	for _, s := range []synth.Shape{
		{Pods: 1000, Intents: 1000},
		{Pods: 10000, Intents: 1000},
		{Pods: 10000, Intents: 10000},
	} {
		st := policy.Compute(synth.New(s).Input())
		name := fmt.Sprintf("pods=%d/intents=%d", s.Pods, s.Intents)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var rs *render.Ruleset
			for b.Loop() {
				rs = render.Render(&st)
			}
			if rules, _ := rs.Counts(); rules == 0 {
				b.Fatal("empty ruleset")
			}
		})
		b.Run("text/"+name, func(b *testing.B) {
			rs := render.Render(&st)
			b.ReportAllocs()
			for b.Loop() {
				if len(rs.Text()) == 0 {
					b.Fatal("empty text")
				}
			}
		})
	}
}
