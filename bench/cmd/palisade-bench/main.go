// Command palisade-bench runs Palisade's benchmarks (issue 6) and writes
// bench/results/*.json and docs/benchmarks.md. hack/bench.sh runs it as root
// after building the binaries; `make bench` runs hack/bench.sh.
//
//	palisade-bench run [--quick] [--only M1,M2,...] [--micro file]
//	palisade-bench report --in bench/results/latest.json   # regenerate the doc
//	palisade-bench nlworker ...                            # internal: traced by strace
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Machine describes where the figures were measured.
type Machine struct {
	Cores  int    `json:"cores"`
	CPU    string `json:"cpu"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Memory string `json:"memory"`
}

// config is what every measurement reads.
type config struct {
	quick   bool
	repo    string
	binDir  string
	assets  string
	workDir string
	logf    func(format string, args ...any)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: palisade-bench run|report|nlworker ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	case "nlworker":
		err = nlWorker(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "palisade-bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	quick := fs.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "quick variant (also BENCH_QUICK=1)")
	only := fs.String("only", "", "comma-separated measurements to run (M1..M7); empty: all")
	micro := fs.String("micro", "", "go test -bench output to summarise")
	repo := fs.String("repo", ".", "repository root")
	assets := fs.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with kube-apiserver and etcd")
	_ = fs.Parse(args)
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces, nftables)")
	}
	root, err := filepath.Abs(*repo)
	if err != nil {
		return err
	}
	cfg := &config{quick: *quick, repo: root, binDir: filepath.Join(root, "bin"), assets: *assets,
		workDir: filepath.Join(root, "bench", "tmp")}
	cfg.logf = func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	// The local cluster's clients log through controller-runtime.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res := &Results{Mode: "full", Started: time.Now(), Machine: machine()}
	if cfg.quick {
		res.Mode = "quick"
	}
	want := map[string]bool{}
	for _, id := range strings.Split(*only, ",") {
		if id = strings.TrimSpace(id); id != "" {
			want[strings.ToUpper(id)] = true
		}
	}
	steps := []struct {
		id string
		fn func(context.Context, *config, *Results) error
	}{
		{"M5", measureRulesetSize},
		{"M2", measureSync},
		{"M4", measureDatapath},
		{"M6", measureControlPlane}, // also M7: one API server for both
		{"M1", measureLatency},
	}
	for _, s := range steps {
		if len(want) > 0 && !want[s.id] && !(s.id == "M6" && want["M7"]) && !(s.id == "M2" && want["M3"]) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		cfg.logf("== %s", s.id)
		if err := s.fn(ctx, cfg, res); err != nil {
			cfg.logf("%s failed: %v", s.id, err)
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", s.id, err))
		}
		cfg.logf("== %s done in %s", s.id, time.Since(start).Round(100*time.Millisecond))
	}
	if *micro != "" {
		m, err := parseMicro(*micro)
		if err != nil {
			res.Errors = append(res.Errors, "micro-benchmarks: "+err.Error())
		}
		res.Micro = m
	}
	sortMetrics(res)
	res.Seconds = time.Since(res.Started).Seconds()
	name, err := res.write(filepath.Join(root, "bench", "results"))
	if err != nil {
		return err
	}
	cfg.logf("wrote %s", name)
	if err := os.MkdirAll(filepath.Join(root, "docs"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, "docs", "benchmarks.md"), []byte(res.markdown()), 0o644)
}

func sortMetrics(r *Results) {
	order := func(id string) string { return id }
	for i := 1; i < len(r.Metrics); i++ {
		for j := i; j > 0 && order(r.Metrics[j].ID) < order(r.Metrics[j-1].ID); j-- {
			r.Metrics[j], r.Metrics[j-1] = r.Metrics[j-1], r.Metrics[j]
		}
	}
}

// report regenerates docs/benchmarks.md from a results file.
func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "bench/results/latest.json", "results file")
	out := fs.String("out", "docs/benchmarks.md", "markdown to write")
	_ = fs.Parse(args)
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	return os.WriteFile(*out, []byte(r.markdown()), 0o644)
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.Atoi(f[1])
				m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return m
}

var microRE = regexp.MustCompile(`^(Benchmark\S+)\s+\d+\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op)?(?:\s+([\d.]+) allocs/op)?`)

var pkgRE = regexp.MustCompile(`^pkg: (\S+)`)

// parseMicro reads `go test -bench -benchmem` output.
func parseMicro(path string) ([]Micro, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []Micro
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := pkgRE.FindStringSubmatch(sc.Text()); m != nil {
			pkg = strings.TrimPrefix(m[1], "github.com/palisade-dev/palisade/")
		}
		m := microRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		by, _ := strconv.ParseFloat(m[3], 64)
		al, _ := strconv.ParseFloat(m[4], 64)
		name := regexp.MustCompile(`-\d+$`).ReplaceAllString(m[1], "")
		out = append(out, Micro{Name: pkg + " " + name, NsPerOp: ns, BytesPerOp: by, AllocsPerOp: al})
	}
	return medianByName(out), sc.Err()
}

// medianByName merges the -count repetitions of each benchmark: the median
// time, with that repetition's memory figures.
func medianByName(in []Micro) []Micro {
	var names []string
	byName := map[string][]Micro{}
	for _, m := range in {
		if _, ok := byName[m.Name]; !ok {
			names = append(names, m.Name)
		}
		byName[m.Name] = append(byName[m.Name], m)
	}
	out := make([]Micro, 0, len(names))
	for _, n := range names {
		ms := byName[n]
		slices.SortFunc(ms, func(a, b Micro) int { return cmp.Compare(a.NsPerOp, b.NsPerOp) })
		out = append(out, ms[(len(ms)-1)/2])
	}
	return out
}

// profileTop CPU-profiles fn and returns the top functions by flat time, as
// `go tool pprof -top` prints them: the explanation a missed target needs.
func profileTop(cfg *config, name string, fn func()) string {
	dir := filepath.Join(cfg.repo, "bench", "results", "profiles")
	_ = os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, name+".pprof")
	if err := startProfile(path); err != nil {
		return ""
	}
	fn()
	stopProfile()
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=6", path).CombinedOutput()
	if err != nil {
		return ""
	}
	var top []string
	started := false
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && f[0] == "flat" {
			started = true
			continue
		}
		if started && len(f) >= 6 {
			top = append(top, fmt.Sprintf("%s %s", f[5], f[1]))
		}
	}
	return fmt.Sprintf("CPU profile (bench/results/profiles/%s.pprof), top by own time: %s", name, strings.Join(top, ", "))
}
