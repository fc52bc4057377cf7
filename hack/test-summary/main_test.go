package main

import (
	"bytes"
	"strings"
	"testing"
)

const events = `{"Action":"run","Package":"p/a","Test":"TestOK"}
{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"p/a","Test":"TestOK"}
{"Action":"run","Package":"p/a","Test":"TestKernel"}
{"Action":"output","Package":"p/a","Test":"TestKernel","Output":"    kernel.go:1: needs root\n"}
{"Action":"output","Package":"p/a","Test":"TestKernel","Output":"--- SKIP: TestKernel (0.00s)\n"}
{"Action":"skip","Package":"p/a","Test":"TestKernel"}
{"Action":"output","Package":"p/a","Output":"ok  \tp/a\t0.1s\n"}
{"Action":"pass","Package":"p/a"}
`

func summarize(t *testing.T, in string, required bool) (string, bool) {
	t.Helper()
	s := summary{pkgs: map[string]*counts{}, pkgFailed: map[string]bool{}, output: map[string][]string{}}
	var out bytes.Buffer
	if err := s.read(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	ok := s.report(&out, required)
	return out.String(), ok
}

func TestSkipFailsOnlyWhenRequired(t *testing.T) {
	out, ok := summarize(t, events, false)
	if !ok || !strings.Contains(out, "1 passed, 0 failed, 1 skipped") || !strings.Contains(out, "TestKernel: kernel.go:1: needs root") {
		t.Errorf("not required: ok=%v\n%s", ok, out)
	}
	if strings.Contains(out, "=== RUN") {
		t.Errorf("a passing test's output was printed:\n%s", out)
	}
	if out, ok := summarize(t, events, true); ok || !strings.Contains(out, "PALISADE_REQUIRE_KERNEL_TESTS=1") {
		t.Errorf("required: ok=%v\n%s", ok, out)
	}
}

func TestFailuresAndBuildFailures(t *testing.T) {
	in := `{"Action":"output","Package":"p/b","Test":"TestBad","Output":"    b_test.go:9: wrong\n"}
{"Action":"fail","Package":"p/b","Test":"TestBad"}
{"Action":"fail","Package":"p/b"}
{"Action":"output","Package":"p/c","Output":"# p/c\nc.go:1: syntax error\n"}
{"Action":"fail","Package":"p/c"}
`
	out, ok := summarize(t, in, false)
	if ok {
		t.Errorf("failing run passed:\n%s", out)
	}
	for _, want := range []string{"b_test.go:9: wrong", "c.go:1: syntax error", "package failed", "0 passed, 1 failed, 0 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
