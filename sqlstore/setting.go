package sqlstore

import (
	"context"
	"database/sql"
	"errors"
)

// InitSetting implements openpca.SettingStore.
func (db *DB) InitSetting(ctx context.Context, name string, value []byte) ([]byte, error) {
	var stored []byte
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.rewrite(`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, db.rewrite(`SELECT value FROM settings WHERE name = ?`), name).Scan(&stored)
	})
	return stored, db.wrap("initializing setting "+name, err)
}

// Setting implements openpca.SettingStore.
func (db *DB) Setting(ctx context.Context, name string) ([]byte, error) {
	var stored []byte
	err := db.read.QueryRowContext(ctx, db.rewrite(`SELECT value FROM settings WHERE name = ?`), name).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return stored, db.wrap("reading setting "+name, err)
}
