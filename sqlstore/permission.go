package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/openpca/openpca"
)

// CreatePermission implements openpca.PermissionStore. A lock on the CA
// serializes creations, so that the limit holds.
func (db *DB) CreatePermission(ctx context.Context, p *openpca.CAPermission, limit int) error {
	actions := make([]string, len(p.Actions))
	for i, a := range p.Actions {
		actions[i] = string(a)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockKey(ctx, tx, "permissions:"+p.CAID); err != nil {
			return err
		}
		var n int
		if err := db.txQueryRow(ctx, tx, `SELECT COUNT(*) FROM ca_permissions WHERE ca_id = ?`, p.CAID).Scan(&n); err != nil {
			return err
		}
		res, err := db.txExec(ctx, tx, `INSERT INTO ca_permissions (ca_id, principal, source_account, actions, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, p.CAID, p.Principal, p.SourceAccount, strings.Join(actions, ","), p.CreatedAt.UnixMicro())
		if err != nil {
			return err
		}
		if added, err := res.RowsAffected(); err != nil {
			return err
		} else if added == 0 {
			return openpca.ErrConflict
		}
		if n >= limit {
			return openpca.ErrLimitExceeded
		}
		return nil
	})
	return db.wrap("creating permission", err)
}

// ListPermissions implements openpca.PermissionStore.
func (db *DB) ListPermissions(ctx context.Context, caID string, after openpca.PermissionCursor, limit int) ([]*openpca.CAPermission, error) {
	rows, err := db.query(ctx, `SELECT principal, source_account, actions, created_at FROM ca_permissions
		WHERE ca_id = ? AND (principal > ? OR (principal = ? AND source_account > ?))
		ORDER BY principal, source_account LIMIT ?`, caID, after.Principal, after.Principal, after.SourceAccount, limit)
	if err != nil {
		return nil, db.wrap("listing permissions", err)
	}
	defer rows.Close()
	var list []*openpca.CAPermission
	for rows.Next() {
		p := &openpca.CAPermission{CAID: caID}
		var actions string
		var created int64
		if err := rows.Scan(&p.Principal, &p.SourceAccount, &actions, &created); err != nil {
			return nil, db.wrap("listing permissions", err)
		}
		for _, a := range strings.Split(actions, ",") {
			p.Actions = append(p.Actions, openpca.ActionType(a))
		}
		p.CreatedAt = time.UnixMicro(created).UTC()
		list = append(list, p)
	}
	return list, db.wrap("listing permissions", rows.Err())
}

// DeletePermission implements openpca.PermissionStore.
func (db *DB) DeletePermission(ctx context.Context, caID, principal, sourceAccount string) error {
	res, err := db.exec(ctx, `DELETE FROM ca_permissions WHERE ca_id = ? AND principal = ? AND source_account = ?`, caID, principal, sourceAccount)
	if err != nil {
		return db.wrap("deleting permission", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return db.wrap("deleting permission", err)
	} else if n == 0 {
		return openpca.ErrNotFound
	}
	return nil
}
