package netns_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/internal/netns"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// TestRoutedPods wires two pods behind a node and connects one to the other
// through the node's forwarding, then removes everything.
func TestRoutedPods(t *testing.T) {
	testenv.RequireRoot(t)
	set := netns.NewSet(fmt.Sprintf("pnt-%d", os.Getpid()))
	t.Cleanup(func() {
		if err := set.Close(); err != nil {
			t.Error(err)
		}
	})
	create := func(name string) *netns.NS {
		ns, err := set.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	node, client, server := create("node"), create("client"), create("server")
	if err := netns.MakeNode(node); err != nil {
		t.Fatal(err)
	}
	clientIP, serverIP := netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.3")
	for _, p := range []struct {
		ns   *netns.NS
		veth string
		ip   netip.Addr
	}{{client, "pv-client", clientIP}, {server, "pv-server", serverIP}} {
		if err := netns.AddPod(node, p.ns, p.veth, p.ip); err != nil {
			t.Fatal(err)
		}
	}

	var l net.Listener
	if err := server.Do(func() (err error) { l, err = net.Listen("tcp4", serverIP.String()+":7000"); return err }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	var c net.Conn
	if err := client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", serverIP.String()+":7000", 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("client to server through the node: %v", err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != clientIP {
		t.Errorf("client's source address %s, want %s", got, clientIP)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
		t.Errorf("read %q, %v", buf, err)
	}

	if out, err := server.Exec("ip", "-o", "addr", "show", "eth0"); err != nil || !strings.Contains(out, serverIP.String()+"/32") {
		t.Errorf("ip addr in the server: %v\n%s", err, out)
	}
	name := server.Name
	if err := server.Delete(); err != nil || netns.Exists(name) {
		t.Errorf("Delete: %v (exists: %v)", err, netns.Exists(name))
	}
	if err := netns.Delete(name); err != nil {
		t.Errorf("deleting a missing namespace: %v", err)
	}
}
