// Package iptables is the fallback backend for nodes without nf_tables
// (`agent --backend=iptables`). It enforces exactly the semantics of the
// nftables backend (dataplane/render) with chains of its own in the filter
// table of iptables and ip6tables, programmed with iptables-restore.
//
// Render (pure) turns a policy.State into the chains of one family;
// RestoreInput (pure) turns them, plus what the kernel holds now, into one
// iptables-restore script; Backend feeds that script to
// `iptables-restore --noflush` and `ip6tables-restore --noflush`: one atomic
// commit per family (the filter table is the only table touched).
//
// # Layout of the filter table (per family)
//
//	FORWARD  rule 1: -j PALISADE-FORWARD
//	INPUT    rule 1: -j PALISADE-INPUT
//	OUTPUT   rule 1: -j PALISADE-OUTPUT
//
//	PALISADE-FORWARD  ct RELATED,ESTABLISHED → RETURN; mid-stream; -j PALISADE-EGRESS; -j PALISADE-INGRESS
//	PALISADE-INPUT    ct RELATED,ESTABLISHED → RETURN; mid-stream; (IPv6) neighbour discovery → RETURN; -j PALISADE-EGRESS
//	  where mid-stream is: -m conntrack --ctstate NEW -p tcp ! --syn -j PALISADE-MIDSTREAM
//	PALISADE-OUTPUT   -m conntrack --ctstate NEW -p tcp ! --syn -j PALISADE-MS-DST   (nothing else)
//	PALISADE-MIDSTREAM -j PALISADE-MS-SRC; -j PALISADE-MS-DST
//	PALISADE-MS-SRC   -s <policed local pod IP> -j DROP          (dispatch on the source)
//	PALISADE-MS-DST   -d <policed local pod IP> -j DROP          (dispatch on the destination)
//	PALISADE-EGRESS   -s <local pod IP> -j PALISADE-EG-<group>   (dispatch on the source)
//	PALISADE-INGRESS  -d <local pod IP> -j PALISADE-IN-<group>   (dispatch on the destination)
//	PALISADE-EG-/IN-<hash>   one per group of pods selected by the same policies
//	PALISADE-PEG-/PIN-<hash> one per policy and direction
//	PALISADE-SRC-/DST-<hash> one per peer list (its IP ranges), shared by rules
//
// The three jump rules are the only thing outside PALISADE-* chains we ever
// write. They are inserted at position 1 when missing (or moved there when
// something was inserted before them, or deduplicated) inside the same
// restore that fills the chains, so a sync never leaves the chains filled and
// unhooked or hooked and half filled.
//
// Dispatch: a pod isolated in a direction has its addresses in the dispatch
// chain of that direction. Up to 16 addresses are matched one rule each;
// beyond that the dispatch chain becomes a binary tree split on address
// prefixes, so finding a pod's group costs O(log pods) rules rather than
// O(pods). Pods in no group fall through and are not isolated.
//
// The mid-stream chains drop a TCP packet that conntrack calls new without
// it being a pure SYN, to or from a pod some non-audit group isolates in
// either direction (render.MidStreamRules says why: a connection the
// conntrack cutter deleted would otherwise revive from the server's
// retransmission). Without ipset the pods' addresses are rules, so
// PALISADE-MS-SRC and PALISADE-MS-DST are dispatch chains built exactly like
// PALISADE-EGRESS and PALISADE-INGRESS (the same tree beyond 16 addresses)
// whose leaves drop: the cost per pod is the one the dispatch already pays,
// and only new non-SYN TCP packets (rare) walk them. PALISADE-OUTPUT sends
// the node's own mid-stream packets through PALISADE-MS-DST, so that a cut
// connection between a pod and the node stays cut when the node retransmits
// first (render.OutputMidStreamRules); it judges nothing else.
//
// # Accept without ACCEPT: the mark bit
//
// An ACCEPT inside a user chain ends the traversal of the whole built-in
// chain (FORWARD, INPUT): the rules other software put after our jump (a CNI's
// or kube-proxy's, a host firewall) would never see the packet. An allowed
// packet must therefore leave our chains by RETURN, and only denied ones end
// here (DROP). A policy chain cannot tell its caller "allowed" with a plain
// RETURN (falling off the end of a chain returns as well), so allowing rules
// set one bit of the packet mark instead:
//
//	PALISADE-IN-<group>:
//	  -m conntrack --ctstate INVALID -j DROP
//	  -j MARK --set-xmark 0x0/BIT          clear the bit: nobody else's bit counts
//	  -j PALISADE-PIN-<policy>             (one per policy of the group)
//	  -m mark --mark 0x0/BIT -j DROP       no policy allowed the packet
//	  -j MARK --set-xmark 0x0/BIT          clear it again, then return
//	PALISADE-PIN-<policy>:
//	  -m mark --mark BIT/BIT -j RETURN     an earlier policy already allowed it
//	  <peer and port matches> -j MARK --set-xmark BIT/BIT   (or -j PALISADE-SRC-… which sets it)
//
// BIT is DefaultMarkBit (0x00800000). It is only meaningful while the packet
// is inside our chains and is always zero when the packet leaves them, but we
// clear it: software that uses the same bit must pick another one. kube-proxy uses 0x4000 and 0x8000, kube-router
// 0x10000 and 0x20000, Cilium bits of 0x0F00; Calico's default mask
// 0xffff0000 covers it, but Calico enforces NetworkPolicy itself and is not a
// CNI this backend is meant for.
//
// # Verdict log
//
// The same decisions as the nftables ruleset are logged, with the same
// prefixes (verdictlog.Prefix, decoded by verdictlog.Table), through
// `-m limit --limit R/sec --limit-burst B -j NFLOG --nflog-group G
// --nflog-prefix P`. NFLOG does not terminate, and the limit is in the log
// rule only, so a packet over the limit meets the same verdict. In a group
// chain each policy jump is followed by
//
//	-m mark --mark BIT/BIT -g PALISADE-AIN-<policy>
//
// which leaves the group chain for the policy's allow chain (log, clear
// the mark); its end returns to the dispatch chain, so the first allowing
// policy is logged and no later one. The final drop is preceded by the
// Dropped log. A group of audit policies only is not isolated: it returns
// conntrack-invalid packets, logs Audited where others drop, and never
// drops.
//
// # Scaling: why nftables is the default
//
// Without ipset, every peer range is a rule (`-s cidr` or
// `-m iprange --src-range a-b`) in its peer chain, and every resolved named
// port is a rule: the number of rules grows with the pods that peer lists
// select, and a new connection to an isolated pod scans them linearly. Each
// sync rewrites all our chains (iptables-restore sends the whole content,
// not a difference). The nftables backend keeps the same data in sets with
// hash and interval lookups and changes only what changed. Established
// traffic costs two rules either way: it returns at the top of
// PALISADE-FORWARD / PALISADE-INPUT.
//
// # What is not filtered, and why (as in the nftables backend)
//
//   - Traffic from the node to its pods: PALISADE-OUTPUT drops only TCP
//     pickups without SYN towards policed pods, so kubelet probes reach pods
//     under default deny (kubernetes-sigs/kube-network-policies#65); replies
//     are established.
//   - Packets of connections that were allowed when they started
//     (RELATED,ESTABLISHED) pass even after a policy change; upstream leaves
//     this implementation-defined (kubernetes/website#43438). Entries the
//     conntrack cutter deletes stay deleted: the mid-stream chains keep a
//     retransmission (a peer pod's or the node's own) from starting a
//     reversed entry. A policed pod's TCP connection whose entry is lost
//     otherwise must reconnect.
//   - UDP flows (no handshake tells a first packet from a later one): a cut
//     UDP flow whose unjudged side sends first, the node included, can
//     revive; the cutter's revival pass deletes it again when it reuses the
//     cut flow's tuple within about 3 s of the cut.
//   - IPv6 neighbour discovery from a pod to the node (router solicitation,
//     neighbour solicitation and advertisement) on INPUT: without it an
//     egress-isolated IPv6 pod cannot resolve its gateway, nor answer the
//     node's solicitations, and loses every allowed flow too
//     (kubernetes-sigs/kube-network-policies#191). IPv4 ARP is not IP and
//     never reaches iptables.
//   - Remote pods' traffic that only transits this node: only local pods are
//     dispatched.
//
// # Which iptables
//
// The backend runs whatever `iptables` / `ip6tables` resolve to on PATH (on
// Debian and most distributions the alternatives system picks iptables-nft
// or iptables-legacy), as kube-proxy does, and it refuses to start when
// `iptables-restore` reports a different variant than `iptables`: rules
// written by one variant are invisible to the other's listing, which is how
// Calico once wrote its rules to the legacy backend while the node used nft
// (projectcalico/calico#5760) and cleanup and idempotence checks went wrong.
// Enforcement itself does not depend on guessing right: both variants hook
// the same netfilter hooks, a DROP in either is final, and this backend never
// ACCEPTs, so its drops hold whichever variant other software uses.
//
// # Failing closed
//
// Nothing is removed when the agent stops: the chains and jumps stay and keep
// enforcing the last synced state. Only Uninstall (`agent uninstall`) removes
// them, again in one restore per family.
package iptables
