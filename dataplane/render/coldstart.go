package render

// ColdStartChain is the only chain of the cold-start ruleset. Its name says
// in `nft list table inet palisade` why the node forwards nothing new.
const ColdStartChain = "cold-start"

// ColdStart returns the ruleset an agent programs on a node that has
// neither a table of ours nor a saved state (a brand-new node), before it
// can reach the API server: until the first sync, the node's pods are
// closed to new forwarded connections instead of open to everything.
//
//	chain cold-start   hook forward priority filter - 10, policy accept
//	    ct state established,related accept
//	    drop
//
// It is table inet palisade like every rendered ruleset, so the first sync
// replaces it in the same atomic transaction that replaces any table of
// ours (the backend's first sync is a full rebuild): there is no moment
// with neither ruleset.
//
// What it drops is every new connection the node forwards: pod to pod,
// pod to outside, outside to pod, NodePort and Service traffic DNAT'd to a
// local pod. Connections established before it (a pod started ahead of
// the agent) keep flowing, and ICMP errors about them too (related). It
// has no input or output chain: the node's own traffic (SSH, kubelet
// probes of its pods, the agent's connection to the API server, pods
// talking to the node itself) is untouched, as in the full ruleset. It
// logs nothing: the verdict log names policies, and there are none yet.
func ColdStart(opts ...Option) *Ruleset {
	return &Ruleset{Table: Resolve(opts...).Table, Chains: []Chain{{
		Name:     ColdStartChain,
		Hook:     HookForward,
		Priority: basePriority,
		Rules: []Rule{
			{CtState: CtEstablishedRelated, Verdict: Accept},
			{Verdict: Drop},
		},
	}}}
}
