package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/palisade-dev/palisade/internal/localcluster"
	"github.com/palisade-dev/palisade/internal/netns"
)

// Measurements 1, 6 and 7 run on the local cluster of internal/localcluster (a real
// kube-apiserver and etcd, nodes as network namespaces), with the agent and
// controller binaries built from the tree. The harness starts the controller
// (and, for measurement 7, an agent) itself, so that it can stop, restart and
// measure those processes.

// clusterPrefix names the local clusters' network namespaces (pbn-node-1,
// pbn-fabric, pbn-<namespace>-<pod>); hack/bench.sh removes leftovers.
const clusterPrefix = "pbn"

var (
	buildOnce sync.Once
	buildErr  error
)

// binaries builds agent, controller, podserver and local-cluster from the
// tree into workDir/bin, once per run.
func binaries(cfg *config) (string, error) {
	dir := filepath.Join(cfg.workDir, "bin")
	buildOnce.Do(func() {
		if buildErr = os.MkdirAll(dir, 0o755); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/agent", "./cmd/controller", "./hack/podserver", "./hack/local-cluster")
		cmd.Dir = cfg.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build the binaries: %w\n%s", err, out)
		}
	})
	return dir, buildErr
}

// upCluster brings a local cluster up in workDir/<name>, removing what an
// interrupted run left there first. Its Down must be called.
func upCluster(ctx context.Context, cfg *config, name string, fc localcluster.Config) (*localcluster.Cluster, error) {
	bin, err := binaries(cfg)
	if err != nil {
		return nil, err
	}
	fc.Dir = filepath.Join(cfg.workDir, name)
	if err := localcluster.Down(fc.Dir); err != nil {
		return nil, fmt.Errorf("remove the leftovers of %s: %w", fc.Dir, err)
	}
	fc.Prefix = clusterPrefix
	fc.BinDir = bin
	fc.AssetsDir = cfg.assets
	fc.CRDDir = filepath.Join(cfg.repo, "config", "crd", "bases")
	fc.Log = func(format string, args ...any) { cfg.logf("  cluster: "+format, args...) }
	return localcluster.Up(ctx, fc)
}

// fastClients are clients without client-side rate limiting, for creating
// thousands of objects (the API server's priority and fairness still
// applies).
func fastClients(c *localcluster.Cluster) (client.Client, kubernetes.Interface, error) {
	rc := rest.CopyConfig(c.Rest)
	rc.QPS, rc.Burst = -1, 0
	cl, err := client.New(rc, client.Options{Scheme: localcluster.Scheme})
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	return cl, cs, err
}

// proc is a process the harness started (the controller, an agent).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	// start is when the process was started.
	start time.Time
}

// startProc starts args (inside network namespace ns when set) with its
// output in workDir/logs/<name>.log.
func startProc(cfg *config, name, ns string, args ...string) (*proc, error) {
	dir := filepath.Join(cfg.workDir, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if ns != "" {
		// `ip netns exec` execs the program: the pid is the program's.
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{}), start: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// hack/bench.sh stops what a killed harness left running by these.
	pidFile := filepath.Join(dir, name+".pid")
	_ = os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	go func() { _ = cmd.Wait(); _ = os.Remove(pidFile); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exitErr describes a process that ended: the end of its log.
func (p *proc) exitErr() error {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return fmt.Errorf("%s exited; last lines of %s:\n%s", p.name, p.log, strings.Join(lines[max(0, len(lines)-10):], "\n"))
}

// stop sends SIGTERM, then SIGKILL after 10 s, and waits for the exit.
func (p *proc) stop() {
	if p == nil || !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// memory reads a process's peak and current resident set (VmHWM, VmRSS) in
// MiB from /proc/<pid>/status.
func memory(pid int) (hwm, rss float64, err error) {
	m, err := memoryDetail(pid)
	return m["VmHWM"], m["VmRSS"], err
}

// memoryDetail reads the Vm* and Rss* lines of /proc/<pid>/status in MiB:
// RssAnon is the process's own memory (heap, stacks), RssFile the pages of
// its mapped binary.
func memoryDetail(pid int) (map[string]float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || fs[2] != "kB" || !(strings.HasPrefix(fs[0], "Vm") || strings.HasPrefix(fs[0], "Rss")) {
			continue
		}
		kb, _ := strconv.ParseFloat(fs[1], 64)
		out[strings.TrimSuffix(fs[0], ":")] = kb / 1024
	}
	if out["VmHWM"] == 0 {
		return nil, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return out, sc.Err()
}

// rssNote splits the current resident set into anonymous memory and the
// binary's file pages.
func rssNote(pid int) string {
	m, err := memoryDetail(pid)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("Resident now: %.1f MiB = anonymous (heap, stacks) %.1f MiB + file pages of the binary %.1f MiB.", m["VmRSS"], m["RssAnon"], m["RssFile"]+m["RssShmem"])
}

// promSample is one line of the Prometheus text format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

var promLabelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

func parseProm(text string) []promSample {
	var out []promSample
	for _, l := range strings.Split(text, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(l, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[sp+1:], 64)
		if err != nil {
			continue
		}
		head := l[:sp]
		s := promSample{name: head, labels: map[string]string{}, value: v}
		if i := strings.IndexByte(head, '{'); i >= 0 {
			s.name = head[:i]
			for _, m := range promLabelRE.FindAllStringSubmatch(head[i:], -1) {
				s.labels[m[1]] = m[2]
			}
		}
		out = append(out, s)
	}
	return out
}

// apiWrites reads the API server's count of writes by resource
// (apiserver_request_total with a write verb), leaving out leases, which the
// API server renews itself every few seconds.
func apiWrites(ctx context.Context, c *localcluster.Cluster) (map[string]float64, error) {
	body, err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the API server's metrics: %w", err)
	}
	out := map[string]float64{}
	for _, s := range parseProm(string(body)) {
		if s.name != "apiserver_request_total" {
			continue
		}
		switch s.labels["verb"] {
		case "POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION":
		default:
			continue
		}
		res := s.labels["resource"]
		if res == "leases" {
			continue
		}
		if sub := s.labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		out[res] += s.value
	}
	return out, nil
}

// writesBetween is after - before per resource, without zeros.
func writesBetween(before, after map[string]float64) (total float64, by map[string]float64) {
	by = map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			by[k] = d
			total += d
		}
	}
	return total, by
}

// scrape reads a plain-HTTP metrics endpoint, dialling inside network
// namespace ns when set.
func scrape(ctx context.Context, ns, url string) ([]promSample, error) {
	tr := &http.Transport{}
	if ns != "" {
		tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return netns.Dial(ctx, ns, addr)
		}
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return parseProm(b.String()), sc.Err()
}

// sumMetric adds the samples of name whose labels include want.
func sumMetric(samples []promSample, name string, want map[string]string) float64 {
	total := 0.0
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// poll calls check every interval until it reports done, ctx ends or
// timeout passes.
func poll(ctx context.Context, interval, timeout time.Duration, what string, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		done, err := check()
		if done && err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return fmt.Errorf("%s: %w", what, perm.error)
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// permanent stops poll at once.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns the
// first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}
