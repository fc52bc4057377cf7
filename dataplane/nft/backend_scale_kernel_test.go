package nft_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/dataplane/internal/netnstest"
	"github.com/palisade-dev/palisade/dataplane/nft"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
	"github.com/palisade-dev/palisade/internal/synth"
	"github.com/palisade-dev/palisade/internal/testenv"
)

// These tests program rulesets of the size the benchmarks found the backend
// failing at (docs/benchmarks.md): a batch larger than the socket's default
// send buffer, more acknowledgements than its receive buffer holds, and
// element lists longer than one netlink attribute can carry.

// scaleNS creates a namespace named pfg-<short>-<pid>-<n>, removed at
// cleanup.
func scaleNS(t *testing.T, short string) *netnstest.NS {
	t.Helper()
	return netnstest.NewPrefixed(t, "pfg", short)
}

// generation reads nf_tables' generation id, which every committed
// transaction bumps by one.
func generation(t *testing.T, ns *netnstest.NS) uint32 {
	t.Helper()
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: ns.Fd})
	if err != nil {
		t.Fatalf("dial netfilter: %v", err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil || len(msgs) != 1 || len(msgs[0].Data) < 4 {
		t.Fatalf("getgen: %v (%d messages)", err, len(msgs))
	}
	ad, err := netlink.NewAttributeDecoder(msgs[0].Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		if ad.Type() == unix.NFTA_GEN_ID {
			return ad.Uint32()
		}
	}
	t.Fatalf("getgen: no NFTA_GEN_ID")
	return 0
}

// loadText loads the ruleset's nft text into ns and returns the canonical
// listing of the table.
func loadText(t *testing.T, ns *netnstest.NS, rs *render.Ruleset) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rs.nft")
	if err := os.WriteFile(f, []byte(rs.Text()), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "nft", "-f", f)
	return listTable(t, ns)
}

// TestFullSyncAtScale: the first sync of a 10k-pod, 1k-intent cluster
// (several MiB of batch, thousands of messages, peer sets of thousands of
// elements) commits as one transaction and leaves the table nft -f makes of
// the same ruleset's text.
func TestFullSyncAtScale(t *testing.T) {
	testenv.RequireRoot(t)
	c := synth.New(synth.Shape{Pods: 10000, Intents: 1000})
	st := policy.Compute(c.Input())
	rs := render.Render(&st)
	rules, elems := rs.Counts()

	ns := scaleNS(t, "full")
	before := generation(t, ns)
	start := time.Now()
	stats, err := nft.New(nft.WithNetNSFd(ns.Fd)).Apply(context.Background(), rs)
	if err != nil {
		t.Fatalf("full sync of %d rules, %d elements: %v", rules, elems, err)
	}
	t.Logf("full sync: %d rules, %d elements, %d sets in %v", rules, elems, len(rs.Sets), time.Since(start))
	if !stats.Full || stats.Rules != rules || stats.SetElements != elems {
		t.Errorf("stats = %+v, want full with %d rules and %d elements", stats, rules, elems)
	}
	if n := generation(t, ns) - before; n != 1 {
		t.Errorf("full sync made %d transactions, want 1", n)
	}
	if got, want := sortedElements(listTable(t, ns)), sortedElements(loadText(t, scaleNS(t, "fref"), rs)); got != want {
		t.Fatalf("netlink and nft -f disagree at scale:\n%s", netnstest.Diff(want, got))
	}
}

// sortedElements sorts the elements inside each `elements = { … }` of a
// listing, one per line: nft lists a concatenated (pipapo) set in the order
// its elements were inserted, which incremental syncs change.
func sortedElements(listing string) string {
	var out strings.Builder
	rest := listing
	for {
		i := strings.Index(rest, "elements = {")
		if i < 0 {
			out.WriteString(rest)
			return out.String()
		}
		j := strings.Index(rest[i:], "}")
		if j < 0 {
			out.WriteString(rest)
			return out.String()
		}
		body := rest[i+len("elements = {") : i+j]
		var items []string
		for _, it := range strings.Split(body, ",") {
			items = append(items, strings.TrimSpace(it))
		}
		sort.Strings(items)
		out.WriteString(rest[:i] + "elements = {\n" + strings.Join(items, "\n") + "\n}")
		rest = rest[i+j+1:]
	}
}

// model is a synthetic ruleset that grows and shrinks at random: address
// sets whose ranges merge and split as addresses come and go, a port set
// with ranges, a named-port set, a verdict map whose entries move between
// chains, and chains with many rules appearing and disappearing.
type model struct {
	rnd    *rand.Rand
	addr4  map[uint32]bool // offsets in 10.64.0.0/16
	addr6  map[uint32]bool // offsets in fd00:200::/116
	ports  map[uint32]bool // proto<<16 | port
	named  map[uint32]bool // offset in 10.65.0.0/16 <<1 | proto bit
	vmap   map[uint32]int  // offset in 10.66.0.0/16 -> chain
	chains int
}

const rulesPerChain = 10

func newModel(seed uint64) *model {
	return &model{rnd: rand.New(rand.NewPCG(seed, seed)), addr4: map[uint32]bool{}, addr6: map[uint32]bool{},
		ports: map[uint32]bool{}, named: map[uint32]bool{}, vmap: map[uint32]int{}}
}

// step adds about add and removes about del entries of each collection
// (scaled to their sizes), and moves the chain count by dChains.
func (m *model) step(add, del, dChains int) {
	churn := func(set map[uint32]bool, space uint32, add, del int) {
		for range add {
			set[m.rnd.Uint32N(space)] = true
		}
		removeRandom(m.rnd, set, del)
	}
	churn(m.addr4, 1<<16, add, del)
	churn(m.addr6, 1<<12, add/6, del/6)
	churn(m.ports, 2<<16, add/6, del/6)
	churn(m.named, 1<<17, add/6, del/6)
	m.chains = max(0, m.chains+dChains)
	for k := range m.vmap {
		// Entries whose chain went away move, some others move anyway.
		if m.vmap[k] >= m.chains || m.rnd.IntN(20) == 0 {
			delete(m.vmap, k)
		}
	}
	if m.chains > 0 {
		for range add / 6 {
			m.vmap[m.rnd.Uint32N(1<<16)] = m.rnd.IntN(m.chains)
		}
	}
	keys := slices.Sorted(mapKeys(m.vmap))
	m.rnd.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for _, k := range keys[:min(len(keys), del/6)] {
		delete(m.vmap, k)
	}
}

func removeRandom(rnd *rand.Rand, set map[uint32]bool, n int) {
	keys := slices.Sorted(mapKeys(set))
	rnd.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for _, k := range keys[:min(len(keys), n)] {
		delete(set, k)
	}
}

func mapKeys[V any](m map[uint32]V) func(func(uint32) bool) {
	return func(yield func(uint32) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ranges merges sorted offsets into runs of consecutive values.
func ranges(set map[uint32]bool) [][2]uint32 {
	var out [][2]uint32
	for _, k := range slices.Sorted(mapKeys(set)) {
		if n := len(out); n > 0 && out[n-1][1]+1 == k {
			out[n-1][1] = k
			continue
		}
		out = append(out, [2]uint32{k, k})
	}
	return out
}

func v4(base [4]byte, off uint32) netip.Addr {
	v := binary.BigEndian.Uint32(base[:]) + off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func v6(off uint32) netip.Addr {
	b := netip.MustParseAddr("fd00:200::").As16()
	binary.BigEndian.PutUint32(b[12:], off)
	return netip.AddrFrom16(b)
}

func (m *model) ruleset() *render.Ruleset {
	rs := &render.Ruleset{}
	for i := range m.chains {
		c := render.Chain{Name: fmt.Sprintf("c%03d", i)}
		for j := range rulesPerChain {
			r := render.Rule{Family: render.Family4, SaddrSet: "peer4", Verdict: render.Accept}
			if j%2 == 1 {
				r = render.Rule{Family: render.Family6, SaddrSet: "peer6", ProtoPortSet: "ports", Verdict: render.Drop}
			}
			c.Rules = append(c.Rules, r)
		}
		rs.Chains = append(rs.Chains, c)
	}
	var p4, p6, ports, named, vmap []render.Element
	for _, r := range ranges(m.addr4) {
		p4 = append(p4, render.Element{Addr: v4([4]byte{10, 64, 0, 0}, r[0]), AddrLast: v4([4]byte{10, 64, 0, 0}, r[1])})
	}
	for _, r := range ranges(m.addr6) {
		p6 = append(p6, render.Element{Addr: v6(r[0]), AddrLast: v6(r[1])})
	}
	for _, r := range ranges(m.ports) {
		// Runs crossing from one protocol to the other split there.
		for lo := r[0]; lo <= r[1]; {
			hi := min(r[1], lo|0xffff)
			proto := uint8(unix.IPPROTO_TCP)
			if lo>>16 == 1 {
				proto = unix.IPPROTO_UDP
			}
			ports = append(ports, render.Element{Proto: proto, Port: uint16(lo), PortLast: uint16(hi)})
			lo = hi + 1
		}
	}
	for _, k := range slices.Sorted(mapKeys(m.named)) {
		proto := uint8(unix.IPPROTO_TCP)
		if k&1 == 1 {
			proto = unix.IPPROTO_UDP
		}
		named = append(named, render.Element{Addr: v4([4]byte{10, 65, 0, 0}, k>>1), Proto: proto, Port: 8080})
	}
	for _, k := range slices.Sorted(mapKeys(m.vmap)) {
		vmap = append(vmap, render.Element{Addr: v4([4]byte{10, 66, 0, 0}, k), Jump: fmt.Sprintf("c%03d", m.vmap[k])})
	}
	rs.Sets = []render.Set{
		{Name: "named4", Kind: render.SetAddr4ProtoPort, Elements: named},
		{Name: "peer4", Kind: render.SetAddr4, Elements: p4},
		{Name: "peer6", Kind: render.SetAddr6, Elements: p6},
		{Name: "ports", Kind: render.SetProtoPort, Elements: ports},
		{Name: "vmap4", Kind: render.MapAddr4, Elements: vmap},
	}
	return rs
}

// TestIncrementalSyncsAtScale grows sets from nothing to over 10k elements
// through incremental syncs, with ranges merging and splitting as addresses
// come and go and hundreds of rules per sync, then shrinks everything back:
// after every sync the kernel's sets hold exactly the rendered elements, and
// at the peak and the end the whole table matches nft -f.
func TestIncrementalSyncsAtScale(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	ns := scaleNS(t, "inc")
	b := nft.New(nft.WithNetNSFd(ns.Fd))
	m := newModel(7)
	type step struct{ add, del, dChains int }
	var steps []step
	for i := range 20 {
		// Two of the growth steps send more than 64 KiB of elements to one
		// set, the first as a full sync, the other as an update.
		add := 1200
		if i == 0 || i == 10 {
			add = 4000
		}
		steps = append(steps, step{add: add, del: 250, dChains: 40})
	}
	for range 8 {
		steps = append(steps, step{add: 300, del: 3500, dChains: -100})
	}
	peak := 0
	for i, s := range steps {
		m.step(s.add, s.del, s.dChains)
		rs := m.ruleset()
		_, elems := rs.Counts()
		gen := generation(t, ns)
		stats, err := b.Apply(ctx, rs)
		if err != nil {
			t.Fatalf("sync %d (%d chains, %d elements): %v", i, len(rs.Chains), elems, err)
		}
		if stats.Full != (i == 0) {
			t.Errorf("sync %d: full=%v", i, stats.Full)
		}
		if n := generation(t, ns) - gen; n != 1 {
			t.Errorf("sync %d made %d transactions, want 1", i, n)
		}
		for j := range rs.Sets {
			checkSet(t, ns, &rs.Sets[j], fmt.Sprintf("sync %d", i))
		}
		if elems > peak {
			peak = elems
		}
		if i == 19 || i == len(steps)-1 {
			if got, want := sortedElements(listTable(t, ns)), sortedElements(loadText(t, scaleNS(t, "iref"), rs)); got != want {
				t.Fatalf("sync %d: table differs from nft -f of the same ruleset:\n%s", i, netnstest.Diff(want, got))
			}
		}
	}
	if peak < 10000 {
		t.Fatalf("the sets peaked at %d elements, want at least 10k", peak)
	}
	t.Logf("peak: %d elements", peak)
}

// checkSet compares the kernel's elements of s with the rendered ones, in
// the encoding the backend sends (interval ends included), or for a verdict
// map its entries as nft lists them (the library does not decode verdicts).
func checkSet(t *testing.T, ns *netnstest.NS, s *render.Set, when string) {
	t.Helper()
	if s.Kind.IsMap() {
		checkMap(t, ns, s, when)
		return
	}
	conn, err := nftables.New(nftables.WithNetNSFd(ns.Fd))
	if err != nil {
		t.Fatal(err)
	}
	got, err := conn.GetSetElements(&nftables.Set{Name: s.Name, Table: &nftables.Table{Name: render.TableName, Family: nftables.TableFamilyINet}})
	if err != nil {
		t.Fatalf("%s: list set %s: %v", when, s.Name, err)
	}
	key := func(e nftables.SetElement) string {
		return fmt.Sprintf("%s-%s-%v", hex.EncodeToString(e.Key), hex.EncodeToString(e.KeyEnd), e.IntervalEnd)
	}
	var have, want []string
	for _, e := range got {
		have = append(have, key(e))
	}
	for _, e := range nft.EncodeElements(s, s.Elements) {
		want = append(want, key(e))
	}
	sort.Strings(have)
	sort.Strings(want)
	if !slices.Equal(have, want) {
		t.Fatalf("%s: set %s holds %d elements, want %d (%d rendered); first difference: %s", when, s.Name, len(have), len(want), len(s.Elements), firstDiff(have, want))
	}
}

func checkMap(t *testing.T, ns *netnstest.NS, s *render.Set, when string) {
	t.Helper()
	out := ns.Run(t, "nft", "-j", "list", "map", "inet", render.TableName, s.Name)
	var doc struct {
		Nftables []struct {
			Map *struct {
				Elem [][2]json.RawMessage `json:"elem"`
			} `json:"map"`
		} `json:"nftables"`
	}
	if err := json.NewDecoder(bytes.NewBufferString(out)).Decode(&doc); err != nil {
		t.Fatalf("%s: parse map %s: %v", when, s.Name, err)
	}
	var have, want []string
	for _, o := range doc.Nftables {
		if o.Map == nil {
			continue
		}
		for _, e := range o.Map.Elem {
			var addr string
			var verdict struct {
				Jump struct {
					Target string `json:"target"`
				} `json:"jump"`
			}
			if err := json.Unmarshal(e[0], &addr); err != nil {
				t.Fatalf("%s: map %s key %s: %v", when, s.Name, e[0], err)
			}
			if err := json.Unmarshal(e[1], &verdict); err != nil {
				t.Fatalf("%s: map %s value %s: %v", when, s.Name, e[1], err)
			}
			have = append(have, addr+" jump "+verdict.Jump.Target)
		}
	}
	for _, e := range s.Elements {
		want = append(want, e.Addr.String()+" jump "+e.Jump)
	}
	sort.Strings(have)
	sort.Strings(want)
	if !slices.Equal(have, want) {
		t.Fatalf("%s: map %s holds %d entries, want %d; first difference: %s", when, s.Name, len(have), len(want), firstDiff(have, want))
	}
}

func firstDiff(have, want []string) string {
	for i := range max(len(have), len(want)) {
		var h, w string
		if i < len(have) {
			h = have[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if h != w {
			return fmt.Sprintf("kernel %q, rendered %q", h, w)
		}
	}
	return "none"
}

// TestManyAcknowledgements: an update of 600 small messages (a
// batch well within the default send buffer) gets all its
// acknowledgements; the default receive buffer holds fewer than 300, and
// without a larger one the kernel drops the rest (ENOBUFS,
// google/nftables#103).
func TestManyAcknowledgements(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	ns := scaleNS(t, "ack")
	b := nft.New(nft.WithNetNSFd(ns.Fd))
	m := newModel(11)
	m.step(100, 0, 1)
	if _, err := b.Apply(ctx, m.ruleset()); err != nil {
		t.Fatal(err)
	}
	m.chains = 60
	rs := m.ruleset()
	stats, err := b.Apply(ctx, rs)
	if err != nil {
		t.Fatalf("update to %d rules: %v", 60*rulesPerChain, err)
	}
	if stats.Full || stats.Rules != 60*rulesPerChain {
		t.Errorf("stats = %+v, want an update to %d rules", stats, 60*rulesPerChain)
	}
	if got, want := sortedElements(listTable(t, ns)), sortedElements(loadText(t, scaleNS(t, "aref"), rs)); got != want {
		t.Fatalf("table differs from nft -f of the same ruleset:\n%s", netnstest.Diff(want, got))
	}
}
