// Command conformance-report selects the upstream Netpol e2e specs that
// hack/test-conformance.sh runs and writes what became of them as markdown
// (docs/conformance.md for the full run).
//
//	conformance-report flags -set full|subset|focus -backend B [-focus RE] [-skip RE]
//
// prints the e2e binary's --ginkgo selection flags, one a line: the set's
// focus, and a skip for what this machine cannot run (SCTP connectivity on a
// kernel without SCTP).
//
//	conformance-report report -set S -out FILE -command CMD -k8s-version V -revision R -seconds N -lock-wait N BACKEND=DIR...
//
// reads each backend's JUnit report (DIR/junit_01.xml, with DIR/seconds and
// DIR/e2e-command that the script writes beside it), writes the markdown to
// FILE and exits 1 when a spec failed, was skipped without a known reason,
// or (for the subset) did not run.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if err := runCommand(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "conformance-report:", err)
		os.Exit(1)
	}
}

func runCommand(args []string) error {
	if len(args) == 0 {
		return errors.New("want a command: flags or report")
	}
	m := machine{Kernel: kernelRelease(), NoSCTP: probeSCTP()}
	switch args[0] {
	case "flags":
		return flagsCommand(args[1:], m)
	case "report":
		return reportCommand(args[1:], m)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func flagsCommand(args []string, m machine) error {
	var s selection
	fs := flag.NewFlagSet("flags", flag.ContinueOnError)
	fs.StringVar(&s.Set, "set", setFull, "full, subset or focus")
	fs.StringVar(&s.Backend, "backend", "", "the Palisade backend the run is for")
	fs.StringVar(&s.Focus, "focus", "", "for the focus set: a regexp on the Netpol specs' text")
	fs.StringVar(&s.Skip, "skip", "", "a regexp of more specs to skip")
	if err := fs.Parse(args); err != nil {
		return err
	}
	flags, err := s.ginkgoFlags(m)
	if err != nil {
		return err
	}
	fmt.Println(strings.Join(flags, "\n"))
	return nil
}

func reportCommand(args []string, m machine) error {
	r := report{Machine: m}
	var out string
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.StringVar(&r.Set, "set", setFull, "full, subset or focus")
	fs.StringVar(&out, "out", "", "the markdown file to write")
	fs.StringVar(&r.Command, "command", "make test-conformance", "the command that made the run")
	fs.StringVar(&r.K8sVersion, "k8s-version", "", "the Kubernetes version of the e2e specs")
	fs.StringVar(&r.Revision, "revision", "", "Palisade's git revision")
	fs.IntVar(&r.Seconds, "seconds", 0, "how long the whole command took, not counting -lock-wait")
	fs.IntVar(&r.LockWaitSeconds, "lock-wait", 0, "how long the command waited for the real-node lock")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" || fs.NArg() == 0 {
		return errors.New("want -out FILE and BACKEND=DIR arguments")
	}
	for _, arg := range fs.Args() {
		backend, dir, ok := strings.Cut(arg, "=")
		if !ok {
			return fmt.Errorf("want BACKEND=DIR, got %q", arg)
		}
		o, err := loadOutcome(backend, dir, r.Set, m)
		if err != nil {
			return fmt.Errorf("%s: %w", backend, err)
		}
		r.Outcomes = append(r.Outcomes, o)
	}
	var buf bytes.Buffer
	if err := r.write(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if p := r.problems(); len(p) > 0 {
		return fmt.Errorf("the run failed (%s):\n  %s", out, strings.Join(p, "\n  "))
	}
	return nil
}

// loadOutcome reads a backend's report directory: the JUnit report, and the
// wall time and command line the script wrote beside it.
func loadOutcome(backend, dir, set string, m machine) (outcome, error) {
	r, err := readRun(dir)
	if err != nil {
		return outcome{}, err
	}
	o, err := classify(r, m, set, backend)
	if err != nil {
		return outcome{}, err
	}
	secs, err := os.ReadFile(filepath.Join(dir, "seconds"))
	if err != nil {
		return outcome{}, fmt.Errorf("reading the run's time: %w", err)
	}
	if o.WallSeconds, err = strconv.Atoi(strings.TrimSpace(string(secs))); err != nil {
		return outcome{}, fmt.Errorf("the run's time: %w", err)
	}
	cmd, err := os.ReadFile(filepath.Join(dir, "e2e-command"))
	if err != nil {
		return outcome{}, fmt.Errorf("reading the run's command: %w", err)
	}
	o.Command = strings.TrimSpace(string(cmd))
	return o, nil
}
