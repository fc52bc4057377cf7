package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Compute returns the state the node in.NodeName must enforce. It never
// fails: malformed policy parts match nothing and are listed in
// State.Errors.
func Compute(in Input) State {
	c := newComputer(in)
	st := State{NodeName: in.NodeName}

	type entry struct {
		np    *networkingv1.NetworkPolicy
		key   string
		audit bool
	}
	var policies []entry
	for _, np := range in.Policies {
		if np != nil {
			policies = append(policies, entry{np, policyKey(np), false})
		}
	}
	for _, np := range in.AuditPolicies {
		if np != nil {
			policies = append(policies, entry{np, AuditKey(np.Namespace, np.Name), true})
		}
	}
	slices.SortStableFunc(policies, func(a, b entry) int { return cmp.Compare(a.key, b.key) })

	ingressOf := map[*podRef][]string{}
	egressOf := map[*podRef][]string{}
	for _, e := range policies {
		np, key := e.np, e.key
		ingressIso, egressIso := policyTypes(np)
		if !ingressIso && !egressIso {
			continue
		}
		targets, selErr := c.selectTargets(np)
		if selErr != nil {
			st.Errors = append(st.Errors, PolicyError{Policy: key, Err: selErr})
		}
		if len(targets) == 0 {
			continue
		}
		pr := PolicyRules{Key: key, Audit: e.audit, IngressIsolating: ingressIso, EgressIsolating: egressIso}
		for _, t := range targets {
			if ingressIso {
				ingressOf[t] = append(ingressOf[t], key)
			}
			if egressIso {
				egressOf[t] = append(egressOf[t], key)
			}
		}
		// A policy with an invalid podSelector selects its whole namespace
		// and allows nothing (fail closed).
		if selErr == nil {
			var errs []error
			if ingressIso {
				for i, r := range np.Spec.Ingress {
					rule, rerrs := c.ingressRule(np, key, i, r, targets)
					pr.Ingress = append(pr.Ingress, rule)
					errs = append(errs, rerrs...)
				}
			}
			if egressIso {
				for i, r := range np.Spec.Egress {
					rule, rerrs := c.egressRule(np, key, i, r)
					pr.Egress = append(pr.Egress, rule)
					errs = append(errs, rerrs...)
				}
			}
			for _, err := range errs {
				st.Errors = append(st.Errors, PolicyError{Policy: key, Err: err})
			}
		}
		st.Policies = append(st.Policies, pr)
	}
	st.Ingress = buildGroups(ingressOf)
	st.Egress = buildGroups(egressOf)
	// An audit policy whose pods all have an enforce policy too is in no
	// group (see stripAudit): nothing refers to its rules.
	st.Policies = slices.DeleteFunc(st.Policies, func(pr PolicyRules) bool {
		return pr.Audit && !inGroups(st.Ingress, pr.Key) && !inGroups(st.Egress, pr.Key)
	})
	return st
}

type computer struct {
	in Input
	*podIndex
	selectors selectorCache
	// allAddrs are the addresses of every peer, built on first use (egress
	// named ports of rules open to every destination).
	allAddrs []addrPod
}

func newComputer(in Input) *computer {
	return &computer{in: in, podIndex: newPodIndex(in), selectors: selectorCache{}}
}

func policyKey(np *networkingv1.NetworkPolicy) string {
	if np == nil {
		return ""
	}
	return np.Namespace + "/" + np.Name
}

// policyTypes applies the API's defaulting: Ingress always, Egress when the
// policy has egress rules.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

func (c *computer) selectTargets(np *networkingv1.NetworkPolicy) ([]*podRef, error) {
	sel, err := c.selectors.convert(&np.Spec.PodSelector)
	var out []*podRef
	for _, p := range c.locals[np.Namespace] {
		if err != nil || sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	if err != nil {
		return out, fmt.Errorf("spec.podSelector: %w (selecting every pod of the namespace, allowing nothing)", err)
	}
	return out, nil
}

func (c *computer) ingressRule(np *networkingv1.NetworkPolicy, key string, i int, r networkingv1.NetworkPolicyIngressRule, targets []*podRef) (Rule, []error) {
	path := func() string { return fmt.Sprintf("spec.ingress[%d]", i) }
	ports, named, perrs := resolvePorts(func() string { return path() + ".ports" }, r.Ports)
	peers, _, errs := c.resolvePeers(np.Namespace, Ingress, func() string { return path() + ".from" }, r.From, false)
	errs = append(errs, perrs...)
	if len(named) > 0 {
		ports.NamedID = shortHash("named", key, string(Ingress), strconv.Itoa(i))
		ports.Named = resolveNamed(named, targetAddrs(targets))
	}
	return Rule{Peers: peers, Ports: ports}, errs
}

func (c *computer) egressRule(np *networkingv1.NetworkPolicy, key string, i int, r networkingv1.NetworkPolicyEgressRule) (Rule, []error) {
	path := func() string { return fmt.Sprintf("spec.egress[%d]", i) }
	ports, named, perrs := resolvePorts(func() string { return path() + ".ports" }, r.Ports)
	peers, dests, errs := c.resolvePeers(np.Namespace, Egress, func() string { return path() + ".to" }, r.To, len(named) > 0)
	errs = append(errs, perrs...)
	if len(named) > 0 {
		ports.NamedID = shortHash("named", key, string(Egress), strconv.Itoa(i))
		ports.Named = resolveNamed(named, dests)
	}
	return Rule{Peers: peers, Ports: ports}, errs
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
