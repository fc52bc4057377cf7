package netns

import (
	"io"
	"net"
	"time"
)

// Listen opens a TCP listener on addr inside the named namespace.
func Listen(name, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(name, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// Forward accepts connections on l until it is closed and forwards each to
// target, dialled from the caller's namespace. With l opened by Listen, it
// lets a process inside a namespace reach a server bound to the host's
// loopback (an API server) without giving the host any address or route.
func Forward(l net.Listener, target string) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go forward(in, target)
	}
}

func forward(in net.Conn, target string) {
	defer func() { _ = in.Close() }()
	out, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer func() { _ = out.Close() }()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); _ = out.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); _ = in.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}
