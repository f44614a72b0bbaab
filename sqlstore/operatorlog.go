package sqlstore

import (
	"context"
	"time"

	"github.com/openpca/openpca"
)

// RecordOperatorAction implements openpca.OperatorLog.
func (db *DB) RecordOperatorAction(ctx context.Context, a *openpca.OperatorAction) error {
	_, err := db.exec(ctx, `INSERT INTO operator_actions (at, os_user, host, command, detail) VALUES (?, ?, ?, ?, ?)`,
		a.At.UnixMicro(), a.User, a.Host, a.Command, a.Detail)
	return db.wrap("recording an operator's action", err)
}

// ListOperatorActions implements openpca.OperatorLog.
func (db *DB) ListOperatorActions(ctx context.Context, limit int) ([]*openpca.OperatorAction, error) {
	rows, err := db.query(ctx, `SELECT at, os_user, host, command, detail FROM operator_actions ORDER BY seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, db.wrap("listing operators' actions", err)
	}
	defer rows.Close()
	var list []*openpca.OperatorAction
	for rows.Next() {
		var a openpca.OperatorAction
		var at int64
		if err := rows.Scan(&at, &a.User, &a.Host, &a.Command, &a.Detail); err != nil {
			return nil, db.wrap("listing operators' actions", err)
		}
		a.At = time.UnixMicro(at).UTC()
		list = append(list, &a)
	}
	return list, db.wrap("listing operators' actions", rows.Err())
}
