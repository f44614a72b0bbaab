package sqlstore

import (
	"bytes"
	"context"
	"database/sql"

	"github.com/openpca/openpca"
)

// Reseal implements openpca.ResealStore. A CA whose key is rewritten gets a
// new version, so that no cached record keeps the old one. Every setting
// is locked for the transaction but Ready's, which a group commit's batch
// writes: its readiness would wait for the reseal, and the batch's other
// writes with it, or wait for each other, holding a CA's row the reseal
// wants.
func (db *DB) Reseal(ctx context.Context, fn func(*openpca.SealedValue) ([]byte, error), guard func(context.Context) error) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []struct {
			kind, read, write string
		}{
			{openpca.SealedCAKey, `SELECT arn, key_handle FROM certificate_authorities WHERE key_store = 'software'{FOR_UPDATE}`,
				`UPDATE certificate_authorities SET key_handle = ?, version = version + 1 WHERE arn = ?`},
			{openpca.SealedAccessKey, `SELECT id, sealed_secret FROM access_keys{FOR_UPDATE}`, `UPDATE access_keys SET sealed_secret = ? WHERE id = ?`},
			{openpca.SealedSetting, `SELECT name, value FROM settings WHERE name <> '` + readinessProbe + `'{FOR_UPDATE}`, `UPDATE settings SET value = ? WHERE name = ?`},
		} {
			var values []*openpca.SealedValue
			rows, err := tx.QueryContext(ctx, db.rewrite(q.read))
			if err != nil {
				return err
			}
			for rows.Next() {
				v := &openpca.SealedValue{Kind: q.kind}
				if err := rows.Scan(&v.ID, &v.Value); err != nil {
					rows.Close()
					return err
				}
				values = append(values, v)
			}
			if err := rows.Close(); err != nil {
				return err
			}
			for _, v := range values {
				resealed, err := fn(v)
				if err != nil {
					return err
				}
				if bytes.Equal(resealed, v.Value) {
					continue
				}
				if _, err := db.txExec(ctx, tx, q.write, resealed, v.ID); err != nil {
					return err
				}
			}
		}
		if guard != nil {
			return guard(ctx)
		}
		return nil
	})
	if err == nil {
		db.cas.clear()
		db.scrub()
	}
	return db.wrap("resealing", err)
}

// scrub asks the dialect's Scrub, if it has one.
func (db *DB) scrub() {
	if db.dialect.Scrub != nil {
		db.dialect.Scrub()
	}
}
