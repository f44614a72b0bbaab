package postgres

import (
	"database/sql"
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
