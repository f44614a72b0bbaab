package sqlite

import "context"

// SchemaVersion returns the highest migration applied.
func (db *DB) SchemaVersion(ctx context.Context) int {
	var v int
	db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v
}

// JournalMode returns the journal mode of the database.
func (db *DB) JournalMode(ctx context.Context) string {
	var mode string
	db.read.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode)
	return mode
}
