package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// probeSCTP says why this kernel cannot open an SCTP socket, or "" when it
// can. Pods share the host's kernel, so this is what the SCTP specs' agnhost
// servers would hit.
func probeSCTP() string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, syscall.IPPROTO_SCTP)
	if err == nil {
		_ = syscall.Close(fd)
		return ""
	}
	if !errors.Is(err, syscall.EPROTONOSUPPORT) {
		return fmt.Sprintf("socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails: %v", err)
	}
	why := "SCTP is neither built in nor loaded as a module"
	if config, err := readKernelConfig("/proc/config.gz"); err == nil {
		why = sctpConfig(config)
	}
	return "socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails with EPROTONOSUPPORT: " + why
}

// readKernelConfig reads the kernel's build configuration (CONFIG_IKCONFIG_PROC).
func readKernelConfig(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return string(b), nil
}

// sctpConfig says, from the kernel's build configuration, why SCTP is
// missing: not built (CONFIG_IP_SCTP unset), and whether a module could
// add it (CONFIG_MODULES).
func sctpConfig(config string) string {
	values := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(config))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			values[k] = v
		}
	}
	switch sctp, modules := values["CONFIG_IP_SCTP"], values["CONFIG_MODULES"]; {
	case sctp == "" && modules == "":
		return "the kernel is built without SCTP (CONFIG_IP_SCTP) and without loadable modules (CONFIG_MODULES)"
	case sctp == "":
		return "the kernel is built without SCTP (CONFIG_IP_SCTP is not set)"
	case sctp == "m":
		return "SCTP is a module (CONFIG_IP_SCTP=m) that is not loaded"
	}
	return "SCTP is configured (CONFIG_IP_SCTP=" + values["CONFIG_IP_SCTP"] + ") but does not answer"
}

// kernelRelease is uname -r.
func kernelRelease() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "(unknown)"
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
