package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"time"

	"github.com/openpca/openpca/sqlstore"
)

// NewScanner gives the tests of package postgres_test the scanner.
func NewScanner(db *sql.DB) sqlstore.Scanner { return scanner{db} }

// OpenDB opens the database at dsn with the store's connections, its
// sessions named session if not "".
func OpenDB(dsn, session string) (*sql.DB, error) { return openDB(dsn, session) }

// Unreachable gives the tests of package postgres_test the dialect's
// classification of errors.
func Unreachable(err error) bool { return unreachable(err) }

// MigrationLock is the lock servers take to migrate the schema.
const MigrationLock = migrationLock

// WithLockWait returns opts with each wait of a migration for a lock
// bounded by wait.
func WithLockWait(opts Options, wait time.Duration) Options {
	opts.lockWait = wait
	return opts
}

// OwnTables returns the tables that the migrations make (ownTables).
func OwnTables() ([]string, error) {
	m, _ := fs.Sub(migrations, "migrations")
	return ownTables(m)
}

// LockTables locks the tables given, as a migration locks its own
// (tableLocker), in tx.
func LockTables(ctx context.Context, tx *sql.Tx, tables []string) error {
	return tableLocker{tables: tables, wait: lockWait}.lock(ctx, tx)
}
