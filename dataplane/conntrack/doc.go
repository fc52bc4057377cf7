// Package conntrack cuts established connections that a policy change no
// longer allows.
//
// The rulesets accept packets of established connections before they look at
// policy (that is what keeps a connection cheap after its first packet), so a
// policy that tightens would otherwise leave every connection that was open
// before it running until it ends: calico#2759 shipped exactly that bug, and
// cilium#691 the same after a policy was deleted. After each successful sync
// the agent calls Cutter.Cut with the state it just programmed; Cut dumps the
// node's conntrack table and deletes the entries whose original direction the
// new state denies. The next packet of such a connection is then "new" to
// netfilter, meets the policy and is dropped: a TCP connection stalls (and
// times out), a UDP or SCTP flow stops.
//
// Only entries the new state denies are deleted, never the others: removing
// or loosening a policy resets nothing (cilium#2569 cleared conntrack too
// eagerly and broke allowed flows). Which entries are denied is decided by
// Judge.Denied (select.go), a pure function over policy.State.Allows, the
// model's own meaning of a verdict, so named ports resolve as the model
// resolves them.
//
// Upstream leaves it to the implementation whether a policy change affects
// established connections (kubernetes/website#43438); kube-network-policies
// cuts them by default (--strict-mode). The agent does too, unless its
// --keep-established-connections flag is set.
//
// This kernel sends no conntrack events (`conntrack -E` stays silent), so Cut
// works from dumps; dumps and deletes work everywhere.
package conntrack
