package intent

import (
	"fmt"
	"runtime/debug"
)

// Guard runs f and turns a panic into a *PanicError, so that one object
// that trips a bug in pure code over untrusted input (a poison object,
// cilium/cilium#14245) neither crashes the process nor stops the work on
// the other objects.
func Guard[T any](f func() (T, error)) (out T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			out, err = zero, &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return f()
}

// PanicError is a panic recovered by Guard.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("panicked: %v", p.Value) }
