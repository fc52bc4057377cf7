package nft

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/palisade-dev/palisade/dataplane"
	"github.com/palisade-dev/palisade/dataplane/render"
)

var _ dataplane.ColdStarter = (*Backend)(nil)

// Installed tells whether the backend's table exists, whatever it holds (a
// synced ruleset, a restored one, or a cold start).
func (b *Backend) Installed(_ context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.installed()
}

func (b *Backend) installed() (bool, error) {
	conn, err := nftables.New(b.opts...)
	if err != nil {
		return false, fmt.Errorf("open netlink: %w", err)
	}
	return tableExists(conn, b.table)
}

func tableExists(conn *nftables.Conn, table *nftables.Table) (bool, error) {
	tables, err := conn.ListTablesOfFamily(table.Family)
	if err != nil {
		return false, fmt.Errorf("list inet tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == table.Name {
			return true, nil
		}
	}
	return false, nil
}

// ColdStart creates the backend's table holding render.ColdStart, in one
// transaction that creates the table exclusively: if a table of ours
// appeared since the check (another agent), the kernel refuses the whole
// batch and the existing rules stay. The next Sync is a full rebuild, which
// replaces the cold start atomically.
func (b *Backend) ColdStart(_ context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applied = nil
	exists, err := b.installed()
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("cold start: table inet %s: %w", b.table.Name, dataplane.ErrInstalled)
	}
	rs := render.ColdStart(render.WithTable(b.table.Name))
	conn, err := nftables.New(b.opts...)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	tx := &txn{conn: conn, table: b.table}
	conn.CreateTable(b.table)
	for i := range rs.Chains {
		conn.AddChain(chainObject(b.table, &rs.Chains[i]))
	}
	for i := range rs.Chains {
		tx.addRules(&rs.Chains[i])
	}
	if tx.err != nil {
		return fmt.Errorf("cold start: %w", tx.err)
	}
	if err := conn.Flush(); err != nil {
		if errors.Is(err, unix.EEXIST) {
			err = errors.Join(err, dataplane.ErrInstalled)
		}
		return fmt.Errorf("cold start nftables transaction: %w", err)
	}
	return nil
}
