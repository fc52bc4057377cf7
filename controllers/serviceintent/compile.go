package serviceintent

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/internal/intent"
	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// CompileFunc computes the NetworkPolicies of one resolved intent.
type CompileFunc func(compiler.Input) ([]networkingv1.NetworkPolicy, error)

// compileIntent is the production compile step: the pure compiler, which
// cannot fail on a resolved intent.
func compileIntent(in compiler.Input) ([]networkingv1.NetworkPolicy, error) {
	return compiler.Compile(in), nil
}

// compileSafely runs compile under intent.Guard, so that one intent that
// trips a compiler bug neither crashes the controller nor stops the other
// intents; a panic comes back as an error wrapping *intent.PanicError.
func compileSafely(compile CompileFunc, in compiler.Input) ([]networkingv1.NetworkPolicy, error) {
	out, err := intent.Guard(func() ([]networkingv1.NetworkPolicy, error) { return compile(in) })
	if _, ok := err.(*intent.PanicError); ok {
		return nil, fmt.Errorf("compiler %w", err)
	}
	return out, err
}
