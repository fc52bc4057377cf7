// Command test-summary reads `go test -json` on standard input and makes it
// visible which suites ran: it prints each failing test's output and the
// packages' closing lines as go test does, then a table of passed, failed and
// skipped tests per package, then one "N passed, N failed, N skipped" line.
//
// It exits 1 when a test or a package failed (a build failure included), and
// also when a test was skipped while PALISADE_REQUIRE_KERNEL_TESTS=1, the
// setting under which every suite must run (see internal/testenv).
//
// Given a command, it runs it and reads its output, and also fails when the
// command does (go test killed before it printed a verdict, say):
//
//	go run ./hack/test-summary go test -json ./...
//	go test -json ./... | go run ./hack/test-summary
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"
)

// requireEnv is internal/testenv.RequireKernelEnv; this binary must not link
// the testing package that testenv imports.
const requireEnv = "PALISADE_REQUIRE_KERNEL_TESTS"

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type counts struct{ pass, fail, skip int }

type summary struct {
	pkgs      map[string]*counts
	pkgFailed map[string]bool
	skipped   []string
	// output buffers each running test's lines until it ends, so that only
	// failing tests' output is printed.
	output map[string][]string
}

func main() {
	s := summary{pkgs: map[string]*counts{}, pkgFailed: map[string]bool{}, output: map[string][]string{}}
	ok, err := run(&s, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "test-summary:", err)
		ok = false
	}
	if !s.report(os.Stdout, os.Getenv(requireEnv) == "1") || !ok {
		os.Exit(1)
	}
}

// run reads the events of the command args, or of standard input when
// there is none, and says whether the command succeeded.
func run(s *summary, args []string) (bool, error) {
	if len(args) == 0 {
		return true, s.read(os.Stdin, os.Stdout)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, err
	}
	if err := cmd.Start(); err != nil {
		return false, err
	}
	rerr := s.read(out, os.Stdout)
	if err := cmd.Wait(); err != nil {
		return false, errors.Join(rerr, fmt.Errorf("%s: %w", strings.Join(args, " "), err))
	}
	return true, rerr
}

func (s *summary) read(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not an event (go vet or build output): pass it through.
			fmt.Fprintln(out, sc.Text())
			continue
		}
		s.add(e, out)
	}
	return sc.Err()
}

func (s *summary) add(e event, out io.Writer) {
	if e.Package == "" {
		if e.Output != "" {
			fmt.Fprint(out, e.Output)
		}
		return
	}
	c := s.pkgs[e.Package]
	if c == nil {
		c = &counts{}
		s.pkgs[e.Package] = c
	}
	key := e.Package + " " + e.Test
	switch e.Action {
	case "output":
		if e.Test != "" {
			s.output[key] = append(s.output[key], e.Output)
		} else if isClosingLine(e.Output) {
			fmt.Fprint(out, e.Output)
		} else {
			s.output[key] = append(s.output[key], e.Output)
		}
	case "pass", "fail", "skip":
		if e.Test == "" {
			if e.Action == "fail" {
				s.pkgFailed[e.Package] = true
				// Package-level output: a build failure, a panic, TestMain's
				// own messages.
				fmt.Fprint(out, strings.Join(s.output[key], ""))
			}
			delete(s.output, key)
			return
		}
		switch e.Action {
		case "pass":
			c.pass++
		case "fail":
			c.fail++
			fmt.Fprint(out, strings.Join(s.output[key], ""))
		case "skip":
			c.skip++
			s.skipped = append(s.skipped, e.Package+" "+e.Test+": "+skipReason(s.output[key]))
		}
		delete(s.output, key)
	}
}

// isClosingLine tells go test's per-package verdict lines: "ok  pkg 0.1s",
// "FAIL pkg 0.1s", "?   pkg [no test files]".
func isClosingLine(line string) bool {
	for _, p := range []string{"ok  \t", "FAIL\t", "?   \t"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// skipReason is the message t.Skip printed: the test's last output line
// other than its "--- SKIP" line.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "--- SKIP") {
			return l
		}
	}
	return "(no reason given)"
}

// report prints the table and the totals, and says whether the run passed.
func (s *summary) report(out io.Writer, required bool) bool {
	names := make([]string, 0, len(s.pkgs))
	for p := range s.pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	var total counts
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\npackage\tpassed\tfailed\tskipped\t")
	for _, p := range names {
		c := s.pkgs[p]
		note := ""
		if s.pkgFailed[p] && c.fail == 0 {
			note = "package failed"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", p, c.pass, c.fail, c.skip, note)
		total.pass += c.pass
		total.fail += c.fail
		total.skip += c.skip
	}
	_ = tw.Flush()
	ok := total.fail == 0 && len(s.pkgFailed) == 0
	if len(s.skipped) > 0 {
		fmt.Fprintln(out, "\nskipped:")
		for _, sk := range s.skipped {
			fmt.Fprintln(out, "  "+sk)
		}
		if required {
			fmt.Fprintf(out, "%s=1: every suite must run, and %d tests were skipped\n", requireEnv, len(s.skipped))
			ok = false
		}
	}
	fmt.Fprintf(out, "\n%d passed, %d failed, %d skipped\n", total.pass, total.fail, total.skip)
	return ok
}
