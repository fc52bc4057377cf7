package policy

import (
	"net/netip"
	"slices"
	"strings"
)

// This file groups the local pods by the set of policies that select them:
// one Group per distinct set.

// inGroups tells whether a policy key is in one of the groups.
func inGroups(groups []Group, key string) bool {
	for _, g := range groups {
		if _, ok := slices.BinarySearch(g.Policies, key); ok {
			return true
		}
	}
	return false
}

// stripAudit removes audit keys from a pod's policy list when it has an
// enforce policy: such a pod is enforced by its enforce policies alone, and
// what its audit policies would add changes no verdict (the audit intent is
// narrower or wider than what is in force, and what is in force decides).
func stripAudit(pols []string) []string {
	if !slices.ContainsFunc(pols, func(k string) bool { return !IsAuditKey(k) }) {
		return pols
	}
	return slices.DeleteFunc(pols, IsAuditKey)
}

func buildGroups(of map[*podRef][]string) []Group {
	byKey := map[string]*Group{}
	for pod, pols := range of {
		pols = stripAudit(pols)
		slices.Sort(pols)
		pols = slices.Compact(pols)
		k := strings.Join(pols, "\x00")
		g := byKey[k]
		if g == nil {
			g = &Group{Policies: pols}
			byKey[k] = g
		}
		g.Pods = append(g.Pods, pod.Namespace+"/"+pod.Name)
		g.IPs = append(g.IPs, pod.ips...)
	}
	out := make([]Group, 0, len(byKey))
	for _, g := range byKey {
		slices.Sort(g.Pods)
		slices.SortFunc(g.IPs, netip.Addr.Compare)
		g.IPs = slices.Compact(g.IPs)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int { return slices.Compare(a.Policies, b.Policies) })
	// Two pods can briefly share an IP (a deleted pod's address reused). An
	// address dispatches to one group only: the first one keeps it.
	claimed := map[netip.Addr]bool{}
	for i := range out {
		out[i].IPs = slices.DeleteFunc(out[i].IPs, func(ip netip.Addr) bool {
			dup := claimed[ip]
			claimed[ip] = true
			return dup
		})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
