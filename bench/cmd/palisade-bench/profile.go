package main

import (
	"os"
	"runtime/pprof"
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
