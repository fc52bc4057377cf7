package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
)

var profFile *os.File

func startProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	profFile = f
	return nil
}

func stopProfile() {
	pprof.StopCPUProfile()
	if profFile != nil {
		_ = profFile.Close()
		profFile = nil
	}
}

// heapTop runs fn with every allocation sampled, writes the heap profile to
// bench/results/profiles/<name>.pprof and returns the bytes fn allocated and
// still held when it returned, with the top allocators by allocated space.
func heapTop(cfg *config, name string, fn func() any) (string, float64) {
	dir := filepath.Join(cfg.repo, "bench", "results", "profiles")
	_ = os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, name+".pprof")
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 4096
	defer func() { runtime.MemProfileRate = old }()
	runtime.GC()
	base := path + ".base"
	if bf, err := os.Create(base); err == nil {
		_ = pprof.Lookup("allocs").WriteTo(bf, 0)
		_ = bf.Close()
	}
	defer func() { _ = os.Remove(base) }()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	keep := fn()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	f, err := os.Create(path)
	allocated := float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20)
	if err != nil {
		return "", allocated
	}
	err = pprof.Lookup("allocs").WriteTo(f, 0)
	_ = f.Close()
	if err != nil {
		return "", allocated
	}
	out, err := exec.Command("go", "tool", "pprof", "-sample_index=alloc_space", "-unit=MB", "-diff_base="+base, "-top", "-nodecount=6", path).CombinedOutput()
	if err != nil {
		return "", allocated
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
			top = append(top, fmt.Sprintf("%s %s", f[5], f[0]))
		}
	}
	return fmt.Sprintf("Heap profile (bench/results/profiles/%s.pprof): %.1f MiB allocated, top allocators by space: %s",
		name, allocated, strings.Join(top, ", ")), allocated
}
