package main

import (
	"errors"
	"fmt"
	"syscall"
)

// probeSCTP says why this kernel cannot open an SCTP socket, or "" when it
// can. Pods share the host's kernel, so this is what the SCTP specs' agnhost
// servers would hit: without SCTP built in or its module loadable,
// socket(2) fails with EPROTONOSUPPORT.
func probeSCTP() string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, syscall.IPPROTO_SCTP)
	if errors.Is(err, syscall.EPROTONOSUPPORT) {
		return "socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails with EPROTONOSUPPORT (SCTP is neither built in nor a loadable module)"
	}
	if err != nil {
		return fmt.Sprintf("socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails: %v", err)
	}
	_ = syscall.Close(fd)
	return ""
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
