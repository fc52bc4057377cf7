// Package hubble serves the agent's flows over the Hubble observer gRPC API
// (github.com/cilium/cilium/api/v1/observer), in Cilium's flow.Flow format,
// so that `hubble observe` works without Cilium: in plaintext on the node's
// loopback (DefaultAddress, through `kubectl port-forward`), and to remote
// readers over mutual TLS only (MutualTLS: credentials replaced while
// serving, clients need a certificate of Palisade's CA, a stream ends when
// its client certificate expires).
//
// Buffer keeps the last flows of the node in a bounded ring and feeds
// followers; Server answers GetFlows, ServerStatus, GetNodes and
// GetNamespaces from it. Filters are evaluated here (filter.go), not with
// Cilium's pkg/ tree, which would pull the whole agent into our build.
//
// Flows are converted once, when observed (convert.go), into the form
// Hubble's CLI prints: drops as Cilium drop notifications with reason
// POLICY_DENIED, allowed and audited flows as policy-verdict events, the
// deciding NetworkPolicies in the allowed-by or denied-by lists of the flow's
// direction.
package hubble
