package compiler_test

import (
	"fmt"
	"testing"

	"github.com/palisade-dev/palisade/internal/intent/compiler"
	"github.com/palisade-dev/palisade/internal/synth"
)

// BenchmarkCompile measures compiling intents into NetworkPolicies, the pure
// part of one reconcile, for one intent and for a whole cold start.
func BenchmarkCompile(b *testing.B) {
	shape := synth.Shape{Pods: 10000, Intents: 1000, ZeroTrustEvery: 4}
	one := shape.Intent(10, 0) // three callers, one of them an address range
	b.Run("intent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(compiler.Compile(one)) == 0 {
				b.Fatal("no policy")
			}
		}
	})
	for _, n := range []int{1000, 10000} {
		intents := make([]compiler.Input, n)
		for j := range intents {
			intents[j] = shape.Intent(j, 0)
		}
		b.Run(fmt.Sprintf("intents=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				total := 0
				for _, in := range intents {
					total += len(compiler.Compile(in))
				}
				if total < n {
					b.Fatalf("%d policies for %d intents", total, n)
				}
			}
		})
	}
}
