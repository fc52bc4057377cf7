package localcluster

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func testPods() []*Pod {
	ports := []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {ContainerPort: 80, Protocol: corev1.ProtocolUDP}}
	return []*Pod{
		{Namespace: "x", Name: "a", IP: netip.MustParseAddr("10.244.1.2"), Ports: ports},
		{Namespace: "x", Name: "b", IP: netip.MustParseAddr("10.244.2.2"), Ports: ports},
		{Namespace: "kube-system", Name: "dns", IP: netip.MustParseAddr("10.244.1.3"), DNS: true,
			Ports: []corev1.ContainerPort{{ContainerPort: 53, Protocol: corev1.ProtocolUDP}}},
	}
}

func TestMatrixExpectAndGrid(t *testing.T) {
	m := Matrix{Pods: testPods()}
	if got, want := len(m.Cells()), 3*2+3*2+3*1; got != want {
		t.Fatalf("cells = %d, want %d", got, want)
	}
	// Deny everything: only the loopback cells stay expected open.
	expected := m.Expect(func(_, _ *Pod, _ Port) bool { return false })
	open := 0
	for k, v := range expected {
		if v {
			open++
			if k.from != k.to {
				t.Errorf("%v expected open although only loopback is", k)
			}
		}
	}
	if open != 5 {
		t.Errorf("%d cells expected open, want the 5 loopback ones", open)
	}
	observed := Truth{}
	for k, v := range expected {
		observed[k] = v
	}
	if n := Mismatches(expected, observed); n != 0 {
		t.Fatalf("identical tables differ in %d cells", n)
	}
	observed[cellKey{"x/b", "x/a", Port{80, corev1.ProtocolUDP}}] = true
	if n := Mismatches(expected, observed); n != 1 {
		t.Fatalf("mismatches = %d, want 1", n)
	}
	want := `rows: from, columns: to; . = connected, X = blocked, ! = not as expected, - = port not served
UDP/53: as expected
TCP/80: as expected
UDP/80: 1 unexpected
                x/a             x/b             kube-system/dns 
x/a             .               X               -               
x/b             .!              .               -               
kube-system/dns X               X               -               
`
	if got := m.Grid(expected, observed, false); got != want {
		t.Errorf("grid:\n%s\nwant:\n%s", got, want)
	}
}
