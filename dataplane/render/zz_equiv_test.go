package render_test

// TEMPORARY (helper H): checks that Compute and Render give byte-identical
// output before and after the performance work. Deleted before handing back.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/bench/synth"
	"github.com/palisade-dev/palisade/dataplane/policy"
	"github.com/palisade-dev/palisade/dataplane/policy/policytest"
	"github.com/palisade-dev/palisade/dataplane/render"
)

func equivDump(in policy.Input) string {
	st := policy.Compute(in)
	errs := st.Errors
	st.Errors = nil
	var b strings.Builder
	fmt.Fprintf(&b, "%+v\n", st)
	for _, e := range errs {
		fmt.Fprintf(&b, "err %s\n", e.Error())
	}
	st.Errors = errs
	rs := render.Render(&st)
	fmt.Fprintf(&b, "%+v\n%s\n", *rs, rs.Text())
	rs2 := render.Render(&st, render.WithoutLog())
	fmt.Fprintf(&b, "%+v\n", *rs2)
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

func equivInputs() []policy.Input {
	var out []policy.Input
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 4000; i++ {
		data := make([]byte, r.IntN(300))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		in := policytest.FuzzInput(data)
		if i%3 == 1 && len(in.Pods) > 1 {
			// odd addresses: shared, mapped, invalid, duplicated
			for k := range in.Pods {
				p := &in.Pods[k]
				switch r.IntN(5) {
				case 0:
					o := in.Pods[r.IntN(len(in.Pods))]
					p.IPs = append(p.IPs, o.IPs...)
				case 1:
					for _, ip := range p.IPs {
						p.IPs = append(p.IPs, netip.AddrFrom16(ip.As16()))
					}
				case 2:
					p.IPs = append([]netip.Addr{{}}, p.IPs...)
				case 3:
					p.IPs = append(p.IPs, p.IPs...)
				}
			}
		}
		out = append(out, in)
	}
	for i := 0; i < 500; i++ {
		out = append(out, policytest.RandomInput(r))
	}
	for _, s := range []synth.Shape{
		{Pods: 1000, Intents: 200, ZeroTrustEvery: 3},
		{Pods: 2000, Intents: 500},
		{Pods: 300, Intents: 100, ZeroTrustEvery: 1, Namespaces: 4},
	} {
		c := synth.New(s)
		for _, node := range []string{"node-0", "node-3", ""} {
			in := c.Input()
			in.NodeName = node
			out = append(out, in)
		}
	}
	return out
}

func TestZZEquivalence(t *testing.T) {
	const file = "/tmp/h/equiv.txt"
	ins := equivInputs()
	var got []string
	for _, in := range ins {
		got = append(got, equivDump(in))
	}
	if os.Getenv("EQUIV_WRITE") == "1" {
		if err := os.WriteFile(file, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d", len(got))
		return
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	bad := 0
	for sc.Scan() {
		if i >= len(got) {
			t.Fatalf("more lines than inputs")
		}
		if sc.Text() != got[i] {
			bad++
			if bad < 5 {
				t.Errorf("input %d differs", i)
			}
		}
		i++
	}
	if i != len(got) || bad > 0 {
		t.Fatalf("%d/%d lines, %d differ", i, len(got), bad)
	}
}
