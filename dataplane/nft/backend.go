// Package nft is the nftables backend: it programs the ruleset that
// dataplane/render describes into its inet table (table inet palisade by
// default) through netlink (github.com/google/nftables), one atomic
// transaction per sync.
package nft

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/nftables"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/render"
	"github.com/palisade-dev/palisade/internal/policy"
)

// Backend programs Palisade's inet table (render.TableName unless WithTable
// names another). The zero value is not usable; use New.
type Backend struct {
	mu    sync.Mutex
	table *nftables.Table
	opts  []nftables.ConnOption
	// render are the rendering options (verdict logging).
	render []render.Option
	// applied is the ruleset the last successful transaction left in the
	// kernel; nil makes the next sync a full rebuild.
	applied *render.Ruleset
}

var _ dataplane.Backend = (*Backend)(nil)

// Option configures a Backend.
type Option func(*Backend)

// WithNetNSFd makes the backend program the network namespace behind fd
// instead of the caller's (for tests).
func WithNetNSFd(fd int) Option {
	return func(b *Backend) { b.opts = append(b.opts, nftables.WithNetNSFd(fd)) }
}

// WithTable names the inet table the backend programs (default
// render.TableName), so that two agents, or an agent and a test, can share a
// network namespace.
func WithTable(name string) Option {
	return func(b *Backend) { b.table.Name = name }
}

// WithRenderOptions sets how the backend renders states (verdict logging);
// without it the render defaults apply.
func WithRenderOptions(opts ...render.Option) Option {
	return func(b *Backend) { b.render = append(b.render, opts...) }
}

// New returns a backend whose first sync rebuilds the table from scratch,
// replacing whatever a previous agent left, atomically.
func New(opts ...Option) *Backend {
	b := &Backend{table: &nftables.Table{Name: render.TableName, Family: nftables.TableFamilyINet}}
	for _, o := range opts {
		o(b)
	}
	// The backend's table wins over any table in the render options.
	b.render = append(b.render, render.WithTable(b.table.Name))
	return b
}

// Sync makes the kernel enforce st in one netlink transaction: a full
// rebuild on the first sync and after any error, otherwise only the
// difference from the last applied ruleset.
func (b *Backend) Sync(ctx context.Context, st *policy.State) (dataplane.Stats, error) {
	rs := render.Render(st, b.render...)
	stats, err := b.Apply(ctx, rs)
	return stats, err
}

// Apply programs a rendered ruleset (Sync without the rendering).
func (b *Backend) Apply(_ context.Context, rs *render.Ruleset) (dataplane.Stats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	full := b.applied == nil
	// Batch begin and end and the table messages of a rebuild, then every
	// object a rebuild deletes and adds, or only what an update changes.
	need := budget{msgs: 5, bytes: 5 * msgOverhead}
	var p *plan
	var cur *present
	if full {
		var err error
		if cur, err = listPresent(b.opts, b.table); err != nil {
			return dataplane.Stats{}, fmt.Errorf("full nftables transaction: %w", err)
		}
		need = need.plus(cur.budget()).plus(rulesetBudget(rs))
	} else {
		p = diffRulesets(b.applied, rs)
		need = need.plus(p.budget())
	}
	conn, err := nftables.New(withBudget(b.opts, need)...)
	if err != nil {
		b.applied = nil
		return dataplane.Stats{}, fmt.Errorf("open netlink: %w", err)
	}
	tx := &txn{conn: conn, table: b.table}
	if full {
		tx.rebuild(rs, cur)
	} else {
		tx.send(p)
	}
	err = tx.err
	if err == nil {
		err = conn.Flush()
	}
	if err != nil {
		// Whatever the kernel holds now, the next sync starts over.
		b.applied = nil
		kind := "incremental"
		if full {
			kind = "full"
		}
		return dataplane.Stats{}, fmt.Errorf("%s nftables transaction: %w", kind, err)
	}
	b.applied = rs
	rules, elems := rs.Counts()
	return dataplane.Stats{Rules: rules, SetElements: elems, Full: full}, nil
}

// ForceFullSync makes the next sync a full rebuild.
func (b *Backend) ForceFullSync() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applied = nil
}

// Uninstall deletes the backend's table. Nothing else ever calls it: the
// rules stay through crashes and restarts (fail closed).
func (b *Backend) Uninstall(_ context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applied = nil
	conn, err := nftables.New(b.opts...)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	// Adding first makes the delete succeed whether or not the table exists,
	// in the same atomic batch.
	conn.AddTable(b.table)
	conn.DelTable(b.table)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("delete table inet %s: %w", b.table.Name, err)
	}
	return nil
}

// txn collects the messages of one transaction.
type txn struct {
	conn  *nftables.Conn
	table *nftables.Table
	err   error
}

func (t *txn) fail(err error) {
	if t.err == nil && err != nil {
		t.err = err
	}
}

func (t *txn) addSet(s *render.Set) {
	// The elements go in messages of their own (see elementChunks).
	o := setObject(t.table, s)
	if err := t.conn.AddSet(o, nil); err != nil {
		t.fail(fmt.Errorf("add set %s: %w", s.Name, err))
	}
	if err := addElements(t.conn, o, elements(s, s.Elements)); err != nil {
		t.fail(fmt.Errorf("add elements to %s: %w", s.Name, err))
	}
}

func (t *txn) addRules(c *render.Chain) {
	ch := chainObject(t.table, c)
	for i := range c.Rules {
		ex, err := ruleExprs(&c.Rules[i])
		if err != nil {
			t.fail(fmt.Errorf("chain %s: %w", c.Name, err))
			return
		}
		t.conn.AddRule(&nftables.Rule{Table: t.table, Chain: ch, Exprs: ex})
	}
}
