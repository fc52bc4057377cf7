package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/go-logr/logr"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Backend programs our chains with iptables-restore. The zero value is not
// usable; use New.
type Backend struct {
	mu     sync.Mutex
	render []render.Option
	tables []*table
}

var _ dataplane.Backend = (*Backend)(nil)

// table is one family's tools.
type table struct {
	family Family
	ipt    *goipt.IPTables
	// restore is the iptables-restore binary of the same variant.
	restore string
}

type config struct {
	families []Family
	render   []render.Option
}

// Option configures a Backend.
type Option func(*config)

// WithFamilies restricts the backend to some families (default both), for
// nodes whose kernel has IPv6 disabled.
func WithFamilies(f ...Family) Option { return func(c *config) { c.families = f } }

// WithRenderOptions sets the rendering options (verdict logging); without
// it the render defaults apply (logging on, verdictlog.DefaultGroup).
func WithRenderOptions(opts ...render.Option) Option {
	return func(c *config) { c.render = append(c.render, opts...) }
}

// New finds iptables and ip6tables (whatever they resolve to on PATH) and
// their restore binaries, and checks that each restore binary is the same
// variant (nf_tables or legacy) as its iptables. It programs nothing.
func New(opts ...Option) (*Backend, error) {
	cfg := config{families: []Family{IPv4, IPv6}}
	for _, o := range opts {
		o(&cfg)
	}
	b := &Backend{render: cfg.render}
	for _, fam := range cfg.families {
		t, err := newTable(fam)
		if err != nil {
			return nil, err
		}
		b.tables = append(b.tables, t)
	}
	return b, nil
}

func newTable(fam Family) (*table, error) {
	proto, bin := goipt.ProtocolIPv4, "iptables"
	if fam == IPv6 {
		proto, bin = goipt.ProtocolIPv6, "ip6tables"
	}
	ipt, err := goipt.New(goipt.IPFamily(proto), goipt.Timeout(5))
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", bin, err)
	}
	restore, err := exec.LookPath(bin + "-restore")
	if err != nil {
		return nil, fmt.Errorf("find %s-restore: %w", bin, err)
	}
	// projectcalico/calico#5760: a restore binary of the other variant
	// would write rules that this variant's listing (our idempotence and
	// cleanup checks) never sees.
	want, err := variant(bin)
	if err != nil {
		return nil, err
	}
	got, err := variant(restore)
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, fmt.Errorf("%s is %s but %s is %s: fix the node's iptables alternatives", bin, want, restore, got)
	}
	return &table{family: fam, ipt: ipt, restore: restore}, nil
}

// variant returns "nf_tables" or "legacy" from a binary's --version.
func variant(bin string) (string, error) {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", bin, err, bytes.TrimSpace(out))
	}
	if strings.Contains(string(out), "nf_tables") {
		return "nf_tables", nil
	}
	return "legacy", nil
}

// Sync rewrites our chains in each family's filter table to enforce st, one
// iptables-restore commit per family. Every sync is a full one: restore
// replaces the chains' whole content, so there is no incremental state to
// lose after an error. A failed IPv6 commit after a successful IPv4 one
// leaves IPv4 updated and IPv6 as it was; the error makes the agent retry.
func (b *Backend) Sync(ctx context.Context, st *policy.State) (dataplane.Stats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	stats := dataplane.Stats{Full: true}
	for _, t := range b.tables {
		rs := Render(st, t.family, DefaultMarkBit, b.render...)
		cur, err := t.current()
		if err != nil {
			return dataplane.Stats{}, err
		}
		input := RestoreInput(rs, cur)
		logr.FromContextOrDiscard(ctx).V(9).Info("iptables-restore", "family", t.family, "input", input)
		if err := t.apply(ctx, input); err != nil {
			return dataplane.Stats{}, err
		}
		stats.Rules += rs.Count() + len(Hooks())
	}
	return stats, nil
}

// Uninstall removes our jumps and chains, one commit per family. It is
// idempotent.
func (b *Backend) Uninstall(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, t := range b.tables {
		cur, err := t.current()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if input := UninstallInput(cur); input != "" {
			errs = append(errs, t.apply(ctx, input))
		}
	}
	return errors.Join(errs...)
}

// current lists our chains and the hooked built-in chains.
func (t *table) current() (Current, error) {
	chains, err := t.ipt.ListChains("filter")
	if err != nil {
		return Current{}, fmt.Errorf("list %s chains: %w", t.family, err)
	}
	cur := Current{Builtin: map[string][]string{}}
	for _, c := range chains {
		if strings.HasPrefix(c, ChainPrefix) {
			cur.Chains = append(cur.Chains, c)
		}
	}
	for _, h := range Hooks() {
		rules, err := t.ipt.List("filter", h.Builtin)
		if err != nil {
			return Current{}, fmt.Errorf("list %s %s: %w", t.family, h.Builtin, err)
		}
		cur.Builtin[h.Builtin] = rules
	}
	return cur, nil
}

// apply runs one restore: one atomic commit of the filter table.
func (t *table) apply(ctx context.Context, input string) error {
	cmd := exec.CommandContext(ctx, t.restore, "--noflush", "--wait")
	cmd.Stdin = strings.NewReader(input)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", t.restore, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
