package postgres

import (
	"database/sql"

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
