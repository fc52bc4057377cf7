package controllers

import (
	"fmt"
	"runtime/debug"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-dev/palisade/internal/intent/compiler"
)

// CompileFunc computes the NetworkPolicies of one resolved intent.
type CompileFunc func(compiler.Input) ([]networkingv1.NetworkPolicy, error)

// compileIntent is the production compile step: the pure compiler, which
// cannot fail on a resolved intent.
func compileIntent(in compiler.Input) ([]networkingv1.NetworkPolicy, error) {
	return compiler.Compile(in), nil
}

// compileSafely runs compile and turns a panic into an error, so that one
// intent that trips a compiler bug (a poison object, cilium/cilium#14245)
// neither crashes the controller nor stops the other intents.
func compileSafely(compile CompileFunc, in compiler.Input) (out []networkingv1.NetworkPolicy, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &compilePanic{value: r, stack: debug.Stack()}
		}
	}()
	return compile(in)
}

// compilePanic is a recovered panic of the compile step.
type compilePanic struct {
	value any
	stack []byte
}

func (p *compilePanic) Error() string { return fmt.Sprintf("compiler panicked: %v", p.value) }
