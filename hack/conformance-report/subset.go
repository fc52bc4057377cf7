package main

// The subset of the Netpol specs that `make test` runs (make
// test-conformance-subset): each behaviour the NetworkPolicy API promises
// at least once, the cheapest spec that shows it, and on the iptables
// backend the half of them that exercises every rule shape its renderer
// has. Per-spec times on this machine are in docs/conformance.md.
//
// Upstream v1.37.2 has no Netpol spec that checks connectivity through an
// endPort range (the only endPort spec, "Netpol API ... with endport
// field", checks the API server's validation); coverageNotes says so and
// where Palisade's own e2e tests cover it.
var subset = []subsetSpec{
	{tcpSpec("should support a 'default-deny-ingress' policy"), "ingress isolation of a whole namespace by an empty podSelector", true},
	{tcpSpec("should deny egress from pods based on PodSelector"), "egress isolation of the pods a podSelector picks", false},
	{tcpSpec("should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector"), "ingress and egress rules of one pod, each changing only its own direction", true},
	{tcpSpec("should enforce policy based on PodSelector with MatchExpressions"), "podSelector peer with matchExpressions (In)", true},
	{tcpSpec("should enforce policy based on NamespaceSelector with MatchExpressions"), "namespaceSelector peer with matchExpressions (In)", true},
	{tcpSpec("should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector"), "egress to a peer with podSelector AND namespaceSelector", false},
	{tcpSpec("should enforce policy based on Ports"), "a numeric TCP port with a namespaceSelector peer", true},
	{udpSpec("should enforce policy based on Ports"), "the same for UDP", true},
	{tcpSpec("should allow ingress access on one named port"), "an ingress named port resolved from each pod's container ports", true},
	{tcpSpec("should allow egress access on one named port"), "an egress named port, resolved on the destination pods", true},
	{tcpSpec("should not allow all ports if it cannot limit to the requested port"), "a named port no pod has still isolates the pod (a security hole if not)", false},
	{tcpSpec("should enforce except clause while egress access to server in CIDR block"), "egress ipBlock with except", true},
	{tcpSpec("should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed"), "an address in one rule's except that another rule allows stays allowed", false},
	{tcpSpec("should enforce updated policy"), "a policy updated in place (allow-all to deny-all)", true},
	{tcpSpec("should allow ingress access from updated pod"), "a peer pod's labels change and the selector starts matching it", true},
	{tcpSpec("should allow ingress access from updated namespace"), "a peer namespace's labels change and the selector starts matching it", false},
	{tcpSpec("should stop enforcing policies after they are deleted"), "a deleted policy stops isolating", false},
	{tcpSpec("should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP"), "an SCTP port does not open the same TCP port", false},
	{tcpSpec("should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP"), "a policy allowing only SCTP still isolates the pod for TCP", true},
	{sctpSpec("should support a 'default-deny-ingress' policy"), "SCTP connections between pods under default-deny-ingress, where the kernel has SCTP", false},
}

// subsetSpec is one spec of the subset.
type subsetSpec struct {
	// Name is the spec's full text as ginkgo reports it (without "[It] ").
	Name string
	// Why is what the spec shows that the others of the subset do not.
	Why string
	// IPTables says whether the iptables backend runs it too; the nftables
	// backend runs all.
	IPTables bool
}

// coverageNotes are what the issue asks of the subset that no upstream spec
// shows, and where it is shown instead.
var coverageNotes = []string{
	"endPort: the v1.37.2 Netpol specs have no connectivity spec for a port range " +
		"(the only endPort spec, \"Netpol API should support creating NetworkPolicy API with endport field\", " +
		"checks the API server's validation); TestNetworkPolicy/{nftables,iptables}/end-port-ingress and end-port-egress " +
		"(make test-e2e, the simulated cluster) check port ranges.",
}

// The Netpol specs' texts: container texts, the spec's, and the
// [Feature:NetworkPolicy] tag the e2e framework appends for the label.
func tcpSpec(it string) string {
	return "[sig-network] Netpol NetworkPolicy between server and client " + it + " [Feature:NetworkPolicy]"
}

func udpSpec(it string) string {
	return "[sig-network] Netpol [LinuxOnly] NetworkPolicy between server and client using UDP " + it + " [Feature:NetworkPolicy]"
}

func sctpSpec(it string) string {
	return "[sig-network] Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using SCTP " + it + " [Feature:NetworkPolicy]"
}

// subsetFor is the subset's specs a backend runs.
func subsetFor(backend string) []subsetSpec {
	var out []subsetSpec
	for _, s := range subset {
		if backend == "nftables" || s.IPTables {
			out = append(out, s)
		}
	}
	return out
}
