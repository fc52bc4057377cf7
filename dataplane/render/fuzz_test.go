package render_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	pt "github.com/palisade-dev/palisade/internal/policy/policytest"
)

// FuzzRender renders the model of random and malformed clusters (decoded by
// policytest.FuzzInput) and checks that rendering never panics and is
// deterministic, that the ruleset is one the kernel would accept (unique
// names, every referenced set and chain present, sets of one family with
// sorted, non-overlapping elements, unique map keys), and that tracing
// packets through it decides as the model does. Seeds: f.Add below and
// testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("palisade"))
	f.Add([]byte{7, 1, 0, 0, 1, 0, 0, 2, 0, 0, 3, 4, 1, 1, 1, 2, 1, 3, 0, 2, 2, 3, 3, 1, 0, 5, 2, 1, 1, 3, 4, 0, 2, 1})
	f.Add([]byte{6, 0, 2, 0, 1, 1, 1, 3, 2, 4, 1, 0, 2, 1, 1, 2, 5, 0, 3, 2, 1, 0, 1, 1, 2, 1, 3, 2, 3, 0, 1, 2, 0, 0, 3, 1, 2, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := pt.FuzzInput(data)
		st := policy.Compute(in)
		rs := render.Render(&st)
		if again := render.Render(&st); !reflect.DeepEqual(rs, again) {
			t.Fatalf("Render is not deterministic:\n%s\n%s", rs.Text(), again.Text())
		}
		_ = rs.Text()
		if err := checkRuleset(rs); err != nil {
			t.Fatalf("%v\n%s", err, rs.Text())
		}
		for _, p := range pt.FuzzPackets(in) {
			traced, logs := rs.TraceLogs(render.HookForward, p)
			if model := st.Allows(p); traced != model {
				t.Fatalf("%+v: traced %v, model %v\n%s\n%s", p, traced, model, pt.Describe(in.Policies), rs.Text())
			}
			if logged, model := decodeLogs(t, &st, logs), st.Decide(p); !reflect.DeepEqual(logged, model) {
				t.Fatalf("%+v: logged %+v, model decides %+v\n%s\n%s", p, logged, model, pt.Describe(in.Policies), rs.Text())
			}
		}
	})
}

// checkRuleset checks what the kernel would refuse in one transaction.
func checkRuleset(rs *render.Ruleset) error {
	chains := map[string]bool{}
	for _, c := range rs.Chains {
		if chains[c.Name] {
			return fmt.Errorf("chain %s twice", c.Name)
		}
		chains[c.Name] = true
	}
	sets := map[string]*render.Set{}
	for i := range rs.Sets {
		s := &rs.Sets[i]
		if sets[s.Name] != nil {
			return fmt.Errorf("set %s twice", s.Name)
		}
		sets[s.Name] = s
		if err := checkSet(s, chains); err != nil {
			return err
		}
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			for _, name := range []string{r.SaddrSet, r.DaddrSet, r.ProtoPortSet, r.DaddrProtoPortSet, r.SaddrMap, r.DaddrMap} {
				if name != "" && sets[name] == nil {
					return fmt.Errorf("chain %s refers to missing set %s", c.Name, name)
				}
			}
			if r.Verdict == render.Jump && !chains[r.Target] {
				return fmt.Errorf("chain %s jumps to missing chain %s", c.Name, r.Target)
			}
		}
	}
	return nil
}

func checkSet(s *render.Set, chains map[string]bool) error {
	bits := 0
	switch s.Kind {
	case render.SetAddr4, render.SetAddr4ProtoPort, render.MapAddr4:
		bits = 32
	case render.SetAddr6, render.SetAddr6ProtoPort, render.MapAddr6:
		bits = 128
	}
	seen := map[render.Element]bool{}
	for i, e := range s.Elements {
		if bits != 0 && e.Addr.BitLen() != bits {
			return fmt.Errorf("set %s: element %+v is not IPv%d", s.Name, e, map[int]int{32: 4, 128: 6}[bits])
		}
		if seen[e] {
			return fmt.Errorf("set %s: element %+v twice", s.Name, e)
		}
		seen[e] = true
		switch {
		case s.Kind == render.SetAddr4 || s.Kind == render.SetAddr6:
			if e.AddrLast.BitLen() != bits || e.AddrLast.Less(e.Addr) {
				return fmt.Errorf("set %s: bad interval %+v", s.Name, e)
			}
			if i > 0 && !s.Elements[i-1].AddrLast.Less(e.Addr) {
				return fmt.Errorf("set %s: intervals %+v and %+v overlap or are unsorted", s.Name, s.Elements[i-1], e)
			}
		case s.Kind == render.SetProtoPort:
			if e.PortLast < e.Port {
				return fmt.Errorf("set %s: bad port interval %+v", s.Name, e)
			}
			if i > 0 {
				prev := s.Elements[i-1]
				if prev.Proto > e.Proto || (prev.Proto == e.Proto && prev.PortLast >= e.Port) {
					return fmt.Errorf("set %s: port intervals %+v and %+v overlap or are unsorted", s.Name, prev, e)
				}
			}
		case s.Kind.IsMap():
			if i > 0 && s.Elements[i-1].Addr == e.Addr {
				return fmt.Errorf("map %s: key %s twice", s.Name, e.Addr)
			}
			if !chains[e.Jump] {
				return fmt.Errorf("map %s: %s jumps to missing chain %s", s.Name, e.Addr, e.Jump)
			}
		}
	}
	return nil
}
