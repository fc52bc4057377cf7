package intent

import (
	"errors"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	_, err := Guard(func() (int, error) {
		var m map[string]int
		m["x"] = 1
		return 1, nil
	})
	var p *PanicError
	if !errors.As(err, &p) || !strings.Contains(err.Error(), "assignment to entry in nil map") || len(p.Stack) == 0 {
		t.Fatalf("Guard of a panic = %v, want a *PanicError with value and stack", err)
	}
	want := errors.New("plain")
	if v, err := Guard(func() (int, error) { return 7, want }); v != 7 || err != want {
		t.Fatalf("Guard passes f's results through: got %d, %v", v, err)
	}
}
