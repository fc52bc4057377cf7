package testenv

import (
	"os"
	"testing"
)

// RequireKernelEnv names the variable that makes the kernel tests
// mandatory: with it set to 1 (make test and CI set it), a test that cannot
// program the kernel fails with the reason instead of skipping, so a run
// that silently tested nothing of the dataplane cannot pass.
const RequireKernelEnv = "PALISADE_REQUIRE_KERNEL_TESTS"

const needsRoot = "needs root to create network namespaces and program netfilter"

// KernelTestsRequired reports whether RequireKernelEnv is set to 1.
func KernelTestsRequired() bool { return os.Getenv(RequireKernelEnv) == "1" }

// RequireRoot stops a test that cannot program the kernel: it skips, saying
// why, or fails when KernelTestsRequired.
func RequireRoot(t testing.TB) {
	t.Helper()
	if msg, fail := rootVerdict(os.Geteuid(), KernelTestsRequired()); msg != "" {
		if fail {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// IsRoot reports whether the test may program the kernel, for a test that
// runs a smaller part of itself without root; when KernelTestsRequired it
// fails the test instead of reporting false.
func IsRoot(t testing.TB) bool {
	t.Helper()
	msg, fail := rootVerdict(os.Geteuid(), KernelTestsRequired())
	if fail {
		t.Fatal(msg)
	}
	return msg == ""
}

// rootVerdict says what a test running with effective uid euid does: run
// (msg empty), skip with msg, or fail with msg.
func rootVerdict(euid int, required bool) (msg string, fail bool) {
	switch {
	case euid == 0:
		return "", false
	case required:
		return needsRoot + ", and " + RequireKernelEnv + "=1 says the kernel tests must run", true
	default:
		return needsRoot + "; CI runs them as root (make test)", false
	}
}
