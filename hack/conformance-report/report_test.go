package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMain(m *testing.M) {
	// The JUnit timestamps are the machine's local time; the golden file
	// was written with UTC.
	time.Local = time.UTC
	os.Exit(m.Run())
}

func TestReportGolden(t *testing.T) {
	m := machine{Kernel: "6.18.44-fc-v1252", NoSCTP: "socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails with EPROTONOSUPPORT"}
	r := report{Set: setFull, K8sVersion: "v1.37.2", Revision: "1283137", Machine: m,
		Command: "make test-conformance", Seconds: 1208, LockWaitSeconds: 42}
	for _, backend := range []string{"nftables", "iptables"} {
		o, err := loadOutcome(backend, filepath.Join("testdata", "full", backend), setFull, m)
		if err != nil {
			t.Fatal(err)
		}
		r.Outcomes = append(r.Outcomes, o)
	}
	var got bytes.Buffer
	if err := r.write(&got); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "full", "conformance.md.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("report differs from %s (go test -update rewrites it):\n%s", golden, got.String())
	}
	if p := r.problems(); len(p) != 1 {
		t.Errorf("problems %q, want the iptables failure", p)
	}
}

func TestDuration(t *testing.T) {
	for secs, want := range map[int]string{0: "0 s", 599: "599 s", 600: "10 min 0 s", 1208: "20 min 8 s"} {
		if got := duration(secs); got != want {
			t.Errorf("duration(%d) = %q, want %q", secs, got, want)
		}
	}
}
