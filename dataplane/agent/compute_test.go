package agent

import (
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/internal/policy"
)

func TestSafeComputeTurnsAPanicIntoAnError(t *testing.T) {
	_, err := safeCompute(func(policy.Input) policy.State { panic("poison") }, policy.Input{})
	if err == nil || !strings.Contains(err.Error(), "poison") {
		t.Fatalf("want an error naming the panic, got %v", err)
	}
	st, err := safeCompute(policy.Compute, policy.Input{NodeName: "n"})
	if err != nil || st.NodeName != "n" {
		t.Fatalf("a good input: state %+v, err %v", st, err)
	}
}
