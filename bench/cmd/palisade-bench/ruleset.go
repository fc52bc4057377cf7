package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/palisade-dev/palisade/bench/stats"
	"github.com/palisade-dev/palisade/dataplane/iptables"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/synth"
)

// measureRulesetSize is measurement 5: rules and set elements as pods and
// policies grow, straight from the renderers.
func measureRulesetSize(_ context.Context, cfg *config, res *Results) error {
	points := []synth.Shape{{Pods: 1000, Intents: 1000}, {Pods: 10000, Intents: 1000}, {Pods: 50000, Intents: 1000}, {Pods: 10000, Intents: 100}, {Pods: 10000, Intents: 10000}}
	if cfg.quick {
		points = []synth.Shape{{Pods: 1000, Intents: 1000}, {Pods: 10000, Intents: 1000}, {Pods: 10000, Intents: 100}}
	}
	rows := map[[2]int]SizeRow{}
	for _, s := range points {
		c := synth.New(s)
		start := time.Now()
		st := policy.Compute(c.Input())
		computeMs := float64(time.Since(start).Microseconds()) / 1000
		rs := render.Render(&st)
		rules, elems := rs.Counts()
		peer := 0
		for _, set := range rs.Sets {
			if strings.HasPrefix(set.Name, "peer") || strings.HasPrefix(set.Name, "named") {
				peer += len(set.Elements)
			}
		}
		row := SizeRow{Pods: s.Pods, Intents: s.Intents, Policies: len(c.Policies), LocalPods: c.LocalPods(),
			Rules: rules, Chains: len(rs.Chains), Elements: elems, PeerEntries: peer, TextBytes: len(rs.Text()),
			IptRules: iptables.Render(&st, iptables.IPv4, iptables.DefaultMarkBit).Count(), ComputeMs: computeMs}
		cfg.logf("ruleset %d pods %d intents: %d rules, %d elements, %d iptables rules", s.Pods, s.Intents, rules, elems, row.IptRules)
		rows[[2]int{s.Pods, s.Intents}] = row
		res.Ruleset = append(res.Ruleset, row)
	}
	small, big := rows[[2]int{1000, 1000}], rows[[2]int{50000, 1000}]
	setup := "1k → 50k pods, 1k intents"
	if cfg.quick {
		big = rows[[2]int{10000, 1000}]
		setup = "1k → 10k pods, 1k intents (quick: no 50k point)"
	}
	res.add(&Metric{ID: "M5a", Name: "Ruleset: rule growth with pods", Setup: setup, Unit: "× rules",
		Stat: "median", Summary: stats.Summarize([]float64{float64(big.Rules) / float64(small.Rules)}),
		Target: "rules independent of pods (ratio 1)", TargetValue: 1,
		Note: fmt.Sprintf("nft rules %d → %d while pods grow %d×; iptables rules %d → %d. nft rules follow the policies that select at least one pod of this node "+
			"(with more pods, more of the same 1k policies select one here: local pods %d → %d), not the pods: peers live in sets.", small.Rules, big.Rules, big.Pods/small.Pods, small.IptRules, big.IptRules, small.LocalPods, big.LocalPods)})
	mid := rows[[2]int{10000, 1000}]
	res.add(&Metric{ID: "M5b", Name: "Ruleset: set elements at 10k pods, 1k intents", Setup: "10k pods (500 on the node), 1k intents", Unit: "elements",
		Stat: "median", Summary: stats.Summarize([]float64{float64(mid.Elements)}),
		Target: "≤ 30k elements, ≈ pods + peer entries, never pods²", TargetValue: 30000,
		Note: fmt.Sprintf("%d elements = %d peer/named-port entries + %d dispatch-map and port entries; %.2f elements per pod.", mid.Elements, mid.PeerEntries, mid.Elements-mid.PeerEntries, float64(mid.Elements)/float64(mid.Pods))})
	return nil
}
