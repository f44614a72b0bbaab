package sqlite

import (
	"context"
	"database/sql"
)

// JournalMode returns the journal mode of the database at path.
func JournalMode(ctx context.Context, path string) string {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var mode string
	db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode)
	return mode
}

// LockPartial is lockPartial, for tests.
var LockPartial = lockPartial
