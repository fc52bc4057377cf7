package render

// ColdStartChain is the chain of the cold-start ruleset that judges
// forwarded packets. Its name says in `nft list table inet palisade` why the
// node forwards nothing new.
const ColdStartChain = "cold-start"

// ColdStart returns the ruleset an agent programs on a node that has
// neither a table of ours nor a saved state (a brand-new node), before it
// can reach the API server: until the first sync, the node's pods are
// closed to new forwarded connections instead of open to everything.
//
//	chain egress       hook forward priority filter - 10, policy accept
//	    jump cold-start
//	chain ingress      hook forward priority filter, policy accept (empty)
//	chain cold-start
//	    ct state established,related accept
//	    drop
//
// It is table inet palisade like every rendered ruleset, so the first sync
// replaces it in the same atomic transaction that replaces any table of
// ours (the backend's first sync is a full rebuild): there is no moment
// with neither ruleset. The forward hook carries the full ruleset's base
// chains, egress and ingress, so that the first sync refills them instead
// of hooking new ones (see the nft backend's rebuild): a packet already
// walking the forward hook when the commit registers a new base chain does
// not pass that chain, only the ones it started with, which may already run
// the new rules.
//
// What it drops is every new connection the node forwards: pod to pod,
// pod to outside, outside to pod, NodePort and Service traffic DNAT'd to a
// local pod. Connections established before it (a pod started ahead of
// the agent) keep flowing, and ICMP errors about them too (related). It
// has no input or output chain: the node's own traffic (SSH, kubelet
// probes of its pods, the agent's connection to the API server, pods
// talking to the node itself) is untouched, as in the full ruleset, and a
// packet that skips the input and output chains the first sync hooks meets
// what the cold start did to it, nothing. It logs nothing: the verdict log
// names policies, and there are none yet.
func ColdStart(opts ...Option) *Ruleset {
	var chains []Chain
	for _, c := range baseChains() {
		if c.Hook != HookForward {
			continue
		}
		if c.Name == ChainEgress {
			c.Rules = []Rule{{Verdict: Jump, Target: ColdStartChain}}
		}
		chains = append(chains, c)
	}
	chains = append(chains, Chain{
		Name: ColdStartChain,
		Rules: []Rule{
			{CtState: CtEstablishedRelated, Verdict: Accept},
			{Verdict: Drop},
		},
	})
	return &Ruleset{Table: Resolve(opts...).Table, Chains: chains}
}
