package main

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// junitFile is the name the e2e framework gives its report in --report-dir
// (test/e2e/framework/test_context.go: "junit_" + report prefix + "01.xml").
const junitFile = "junit_01.xml"

// run is one backend's run of the specs as its JUnit report tells it.
type run struct {
	// Suite is the suite's description, which ginkgo puts before a spec's
	// text when it matches --ginkgo.focus and --ginkgo.skip.
	Suite string
	Start time.Time
	// Seconds is how long the specs took, the suite's own setup included.
	Seconds     float64
	Focus       string
	Skip        string
	LabelFilter string
	Specs       []spec
}

// spec is one testcase: a spec's full text and how it ended.
type spec struct {
	// Name is the spec's full text without ginkgo's "[It] " prefix, the text
	// --ginkgo.focus matches (after the suite's description).
	Name    string
	State   string
	Seconds float64
	// Message is the failure message, or the reason a spec gave to Skip.
	Message string
	// Location is where it failed (the failure's description, first line).
	Location string
}

type junitSuites struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Time       float64         `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Time    float64       `xml:"time,attr"`
	Skipped *junitMessage `xml:"skipped"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
}

type junitMessage struct {
	Message     string `xml:"message,attr"`
	Description string `xml:",chardata"`
}

// readRun reads the JUnit report the e2e binary wrote into dir.
func readRun(dir string) (run, error) {
	path := filepath.Join(dir, junitFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return run{}, fmt.Errorf("reading the JUnit report: %w", err)
	}
	r, err := parseJUnit(data)
	if err != nil {
		return run{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func parseJUnit(data []byte) (run, error) {
	var doc junitSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		return run{}, fmt.Errorf("parsing JUnit XML: %w", err)
	}
	if len(doc.Suites) != 1 {
		return run{}, fmt.Errorf("want one testsuite, the report has %d", len(doc.Suites))
	}
	s := doc.Suites[0]
	// ginkgo writes the suite's start in the machine's local time, without a zone.
	start, err := time.ParseInLocation("2006-01-02T15:04:05", s.Timestamp, time.Local)
	if err != nil {
		return run{}, fmt.Errorf("testsuite timestamp: %w", err)
	}
	r := run{Suite: s.Name, Start: start, Seconds: s.Time}
	for _, p := range s.Properties {
		switch p.Name {
		// ginkgo joins several --ginkgo.focus (or skip) flags with
		// ","; hack/test-conformance.sh passes one regexp each.
		case "FocusStrings":
			r.Focus = p.Value
		case "SkipStrings":
			r.Skip = p.Value
		case "LabelFilter":
			r.LabelFilter = p.Value
		}
	}
	for _, c := range s.Cases {
		r.Specs = append(r.Specs, c.spec())
	}
	return r, nil
}

func (c junitCase) spec() spec {
	sp := spec{Name: strings.TrimPrefix(c.Name, "[It] "), State: c.Status, Seconds: c.Time}
	var m *junitMessage
	switch {
	case c.Failure != nil:
		m = c.Failure
	case c.Error != nil:
		m = c.Error
	case c.Skipped != nil:
		// ginkgo writes "skipped" for a spec its filters left out and
		// "skipped - REASON" for one that called Skip(REASON).
		sp.Message = strings.TrimPrefix(strings.TrimPrefix(c.Skipped.Message, "skipped"), " - ")
		return sp
	default:
		return sp
	}
	sp.Message, sp.Location = failureText(m)
	return sp
}

// failureText is a failure's message and location. The e2e framework leaves
// the message attribute empty (test/e2e/framework/internal/junit) and the
// description has both: "[FAILED] MESSAGE" up to "In [It] at: FILE:LINE @ TIME".
func failureText(m *junitMessage) (message, location string) {
	message = strings.TrimSpace(m.Message)
	var lines []string
	for _, line := range strings.Split(m.Description, "\n") {
		if strings.HasPrefix(line, "In [") {
			if _, at, ok := strings.Cut(line, " at: "); ok {
				location, _, _ = strings.Cut(at, " @ ")
				location = strings.TrimSpace(location)
			}
			break
		}
		lines = append(lines, line)
	}
	if message == "" {
		message = strings.TrimSpace(strings.Join(lines, "\n"))
		if rest, ok := strings.CutPrefix(message, "["); ok {
			if _, after, ok := strings.Cut(rest, "] "); ok {
				message = after
			}
		}
	}
	return message, location
}
